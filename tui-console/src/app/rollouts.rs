//! The rollouts view's state and keys: every rollout (the active one first), the selected
//! rollout with per-bench progress, the reason typed for an abort or a rollback, and the
//! steering action in flight with its outcome.

use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::ideas::{MAX_REASON, Outcome, explain};
use super::{App, Availability, Command, Effects, Mode, PAGE, View};
use crate::api::{ApiError, Rollout, RolloutSummary, Steer};

/// What the feed fetches while the rollouts view is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutsFocus {
    /// The rollout whose per-bench progress to fetch.
    pub selected: Option<String>,
}

/// An abort or rollback whose reason is being typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SteerDraft {
    pub id: String,
    pub action: Steer,
    pub reason: String,
}

/// The rollouts view's data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RolloutsPane {
    /// Every rollout in brief, as the control plane lists them (newest first).
    pub list: Vec<RolloutSummary>,
    /// When the list last arrived.
    pub loaded_at: Option<DateTime<Utc>>,
    /// Why the list cannot be fetched, while it cannot.
    pub error: Option<ApiError>,
    /// The selected rollout's id.
    pub selected: Option<String>,
    /// The selected rollout with per-bench progress; `None` while loading.
    pub detail: Option<Rollout>,
    pub detail_error: Option<ApiError>,
    /// The abort or rollback being typed (in [`Mode::Reason`]).
    pub draft: Option<SteerDraft>,
    /// The action sent and not answered yet: rollout id and action.
    pub pending: Option<(String, Steer)>,
    pub outcome: Option<Outcome>,
}

/// A rollout id as the console shows it: the first 8 characters of the UUID.
pub fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

impl RolloutsPane {
    /// The active rollout first (there is at most one), then the rest newest first.
    pub fn rows(&self) -> Vec<&RolloutSummary> {
        let active = self.list.iter().filter(|r| r.state.is_active());
        let rest = self.list.iter().filter(|r| !r.state.is_active());
        active.chain(rest).collect()
    }

    pub fn selected_index(&self, rows: &[&RolloutSummary]) -> Option<usize> {
        let id = self.selected.as_deref()?;
        rows.iter().position(|r| r.id == id)
    }

    /// The selected rollout as the list shows it.
    pub fn current(&self) -> Option<&RolloutSummary> {
        let id = self.selected.as_deref()?;
        self.list.iter().find(|r| r.id == id)
    }

    /// The selected rollout's detail, if it has arrived.
    pub fn current_detail(&self) -> Option<&Rollout> {
        self.detail
            .as_ref()
            .filter(|d| self.selected.as_deref() == Some(d.id.as_str()))
    }

    /// Keeps the selection on a listed rollout (the first row when it is gone); true when the
    /// selection changed.
    fn settle(&mut self) -> bool {
        let rows = self.rows();
        if self.selected_index(&rows).is_some() {
            return false;
        }
        let first = rows.first().map(|r| r.id.clone());
        let changed = first != self.selected;
        self.selected = first;
        changed
    }

    /// Moves the selection; true when it moved.
    fn move_by(&mut self, by: isize) -> bool {
        let rows = self.rows();
        if rows.is_empty() {
            return false;
        }
        let at = self.selected_index(&rows).unwrap_or(0);
        let to = at.saturating_add_signed(by).min(rows.len() - 1);
        let id = rows[to].id.clone();
        if self.selected.as_deref() == Some(id.as_str()) {
            return false;
        }
        self.selected = Some(id);
        true
    }

    /// Puts a rollout as the server described it into the list: replaced, or added first.
    fn upsert(&mut self, summary: RolloutSummary) -> bool {
        match self.list.iter_mut().find(|r| r.id == summary.id) {
            Some(r) if *r == summary => false,
            Some(r) => {
                *r = summary;
                true
            }
            None => {
                self.list.insert(0, summary);
                true
            }
        }
    }
}

impl App {
    /// What the feed should fetch for the rollouts view now.
    pub fn rollouts_focus(&self) -> RolloutsFocus {
        RolloutsFocus {
            selected: self.rollouts_pane.selected.clone(),
        }
    }

    fn rollouts_focused(&self) -> Effects {
        Effects::with(Command::Rollouts(Some(self.rollouts_focus())))
    }

    pub(super) fn rollouts_key(&mut self, key: KeyEvent) -> Effects {
        let pane = &mut self.rollouts_pane;
        let moved = match key.code {
            KeyCode::Esc => return self.show(View::Fleet),
            KeyCode::Up | KeyCode::Char('k') => pane.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => pane.move_by(1),
            KeyCode::PageUp => pane.move_by(-PAGE),
            KeyCode::PageDown => pane.move_by(PAGE),
            KeyCode::Home | KeyCode::Char('g') => pane.move_by(isize::MIN),
            KeyCode::End | KeyCode::Char('G') => pane.move_by(isize::MAX),
            KeyCode::Char('p') => return self.steer(Steer::Pause),
            KeyCode::Char('u') => return self.steer(Steer::Resume),
            KeyCode::Char('a') => return self.steer(Steer::Abort),
            KeyCode::Char('b') => return self.steer(Steer::Rollback),
            _ => return Effects::none(),
        };
        if !moved {
            return Effects::none();
        }
        self.rollouts_pane.detail = None;
        self.rollouts_pane.detail_error = None;
        self.rollouts_focused()
    }

    /// `p`, `u`, `a`, `b`: pause or resume at once, ask for the reason of an abort or rollback.
    fn steer(&mut self, action: Steer) -> Effects {
        let verb = action.verb();
        if !self.access.can_act() {
            self.notice(format!(
                "read-only: a {} token cannot {verb} a rollout",
                self.access.label()
            ));
            return Effects::redraw();
        }
        let pane = &self.rollouts_pane;
        if let Some((id, pending)) = &pane.pending {
            let text = format!("still waiting for the answer to {} {}", pending.verb(), short_id(id));
            self.notice(text);
            return Effects::redraw();
        }
        let Some(rollout) = pane.current() else {
            self.notice(format!("no rollout selected to {verb}"));
            return Effects::redraw();
        };
        let id = rollout.id.clone();
        if !action.applies_to(rollout.state) {
            let text = format!("cannot {verb} {}: it is {}", short_id(&id), rollout.state.as_str());
            self.notice(text);
            return Effects::redraw();
        }
        if action.needs_reason() {
            self.rollouts_pane.draft = Some(SteerDraft {
                id,
                action,
                reason: String::new(),
            });
            self.mode = Mode::Reason;
            return Effects::redraw();
        }
        self.send_steer(id, action, None)
    }

    fn send_steer(&mut self, id: String, action: Steer, reason: Option<String>) -> Effects {
        self.notice(format!("{} {}…", action.doing(), short_id(&id)));
        self.rollouts_pane.pending = Some((id.clone(), action));
        Effects::with(Command::Steer { id, action, reason })
    }

    /// Keys while typing the reason for an abort or a rollback: everything is text but ⏎ and
    /// esc.
    pub(super) fn steer_reason_key(&mut self, key: KeyEvent) -> Effects {
        let Some(draft) = self.rollouts_pane.draft.as_mut() else {
            self.mode = Mode::Normal;
            return Effects::redraw();
        };
        match key.code {
            KeyCode::Esc => {
                let text = format!("{} not {}", short_id(&draft.id), draft.action.past());
                self.rollouts_pane.draft = None;
                self.mode = Mode::Normal;
                self.notice(text);
            }
            KeyCode::Enter if draft.reason.trim().is_empty() => {
                let text = format!("say why you {} it (esc cancels)", draft.action.verb());
                self.notice(text);
            }
            KeyCode::Enter => {
                let SteerDraft { id, action, reason } = draft.clone();
                self.rollouts_pane.draft = None;
                self.mode = Mode::Normal;
                return self.send_steer(id, action, Some(reason.trim().to_owned()));
            }
            KeyCode::Backspace => {
                draft.reason.pop();
            }
            KeyCode::Char(c)
                if !key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
                    && draft.reason.chars().count() < MAX_REASON =>
            {
                draft.reason.push(c);
            }
            _ => return Effects::none(),
        }
        Effects::redraw()
    }

    /// The list of rollouts arrived, or failed.
    pub(super) fn on_rollouts(&mut self, result: Result<Vec<RolloutSummary>, ApiError>) -> Effects {
        let pane = &mut self.rollouts_pane;
        match result {
            Err(ApiError::NotFound { .. }) => {
                // The route went away (or never was): back to the "not available" frame.
                self.rollouts = Availability::Missing;
                return Effects::redraw();
            }
            Ok(list) => {
                pane.list = list;
                pane.loaded_at = Some(self.now);
                pane.error = None;
                self.rollouts = Availability::Present;
            }
            Err(e) => pane.error = Some(e),
        }
        if self.rollouts_pane.settle() {
            self.rollouts_pane.detail = None;
            self.rollouts_pane.detail_error = None;
            if self.view == View::Rollouts {
                return self.rollouts_focused();
            }
        }
        Effects::redraw()
    }

    pub(super) fn on_rollout_detail(&mut self, id: &str, result: Result<Rollout, ApiError>) -> Effects {
        let pane = &mut self.rollouts_pane;
        if pane.selected.as_deref() != Some(id) {
            return Effects::none();
        }
        match result {
            Ok(d) => {
                pane.upsert(d.summary());
                pane.detail = Some(d);
                pane.detail_error = None;
            }
            Err(e) => pane.detail_error = Some(e),
        }
        Effects::redraw()
    }

    pub(super) fn on_steered(&mut self, id: &str, action: Steer, result: Result<Rollout, ApiError>) -> Effects {
        let pane = &mut self.rollouts_pane;
        if pane.pending.as_ref().is_some_and(|(p, _)| p == id) {
            pane.pending = None;
        }
        let short = short_id(id);
        let outcome = match result {
            Ok(rollout) => {
                let text = format!("{} {short}: now {}", action.past(), rollout.state.as_str());
                pane.upsert(rollout.summary());
                if pane.selected.as_deref() == Some(id) {
                    pane.detail = Some(rollout);
                    pane.detail_error = None;
                }
                Outcome { text, ok: true }
            }
            Err(e) => Outcome {
                text: format!("cannot {} {short}: {}", action.verb(), explain(&e)),
                ok: false,
            },
        };
        self.notice(outcome.text.clone());
        self.rollouts_pane.outcome = Some(outcome);
        // Configurations change with the action: the fleet's drift and the rollout list too.
        Effects::with(Command::Refresh)
    }

    /// A `rollout` event: the list shows it at once; the open view refetches the detail.
    pub(super) fn on_rollout_changed(&mut self, summary: RolloutSummary) -> Effects {
        let changed = self.rollouts_pane.upsert(summary);
        if self.view == View::Rollouts && self.rollouts == Availability::Present {
            return Effects {
                redraw: changed,
                commands: vec![Command::Rollouts(Some(self.rollouts_focus()))],
            };
        }
        // Another view is open: the list is up to date for later, nothing on screen changed.
        Effects::none()
    }
}

#[cfg(test)]
mod tests;
