//! The ideas view's state and keys: the moderation queue and the newest ideas in one table
//! (the queue first), the selected idea with its history, the reason typed for a rejection,
//! and the moderation action in flight with its outcome.

use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{App, Availability, Command, Effects, Mode, PAGE, View};
use crate::api::{ApiError, IdeaDetail, IdeaPage, IdeaView, Moderation};

/// Longest rejection reason typed at the console, in characters.
pub const MAX_REASON: usize = 500;

/// What the feed fetches while the ideas view is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdeasFocus {
    /// Also poll the moderation queue (operators and admins only may read it).
    pub queue: bool,
    /// The idea whose history to fetch.
    pub selected: Option<String>,
}

/// A rejection being typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectDraft {
    pub id: String,
    pub code: String,
    pub reason: String,
}

/// The outcome of the last moderation action, kept on screen until the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub text: String,
    pub ok: bool,
}

/// The ideas view's data.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IdeasPane {
    /// `held`, `unroutable` and `escalated` ideas, newest first.
    pub queue: Vec<IdeaView>,
    /// The newest ideas of any state.
    pub latest: Vec<IdeaView>,
    /// When the newest ideas last arrived.
    pub loaded_at: Option<DateTime<Utc>>,
    /// Why the newest ideas cannot be fetched, while they cannot.
    pub error: Option<ApiError>,
    /// Why the queue cannot be fetched, while it cannot.
    pub queue_error: Option<ApiError>,
    /// The selected idea's id.
    pub selected: Option<String>,
    /// The selected idea with its history; `None` while loading.
    pub detail: Option<IdeaDetail>,
    pub detail_error: Option<ApiError>,
    /// The rejection being typed (in [`Mode::Reason`]).
    pub draft: Option<RejectDraft>,
    /// The action sent and not answered yet: idea id and action.
    pub pending: Option<(String, Moderation)>,
    pub outcome: Option<Outcome>,
}

/// One table row: an idea, and whether it waits in the moderation queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IdeaRow<'a> {
    pub idea: &'a IdeaView,
    pub queued: bool,
}

impl IdeasPane {
    /// The queue first, then the newest ideas that are not in it.
    pub fn rows(&self) -> Vec<IdeaRow<'_>> {
        let queued = self.queue.iter().map(|idea| IdeaRow { idea, queued: true });
        let rest = self
            .latest
            .iter()
            .filter(|i| !self.queue.iter().any(|q| q.id == i.id))
            .map(|idea| IdeaRow { idea, queued: false });
        queued.chain(rest).collect()
    }

    pub fn selected_index(&self, rows: &[IdeaRow<'_>]) -> Option<usize> {
        let id = self.selected.as_deref()?;
        rows.iter().position(|r| r.idea.id == id)
    }

    /// The selected idea as the lists show it.
    pub fn current(&self) -> Option<&IdeaView> {
        let id = self.selected.as_deref()?;
        self.queue.iter().chain(&self.latest).find(|i| i.id == id)
    }

    /// An idea's tracking code, or its id when it is not listed.
    pub fn code_of(&self, id: &str) -> String {
        self.queue
            .iter()
            .chain(&self.latest)
            .find(|i| i.id == id)
            .map_or_else(|| id.to_owned(), |i| i.tracking_code.clone())
    }

    /// Keeps the selection on a listed idea (the first row when it is gone); true when the
    /// selection changed.
    fn settle(&mut self) -> bool {
        let rows = self.rows();
        if self.selected_index(&rows).is_some() {
            return false;
        }
        let first = rows.first().map(|r| r.idea.id.clone());
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
        let last = rows.len() - 1;
        let at = self.selected_index(&rows).unwrap_or(0);
        let to = at.saturating_add_signed(by).min(last);
        let id = rows[to].idea.id.clone();
        if self.selected.as_deref() == Some(id.as_str()) {
            return false;
        }
        self.selected = Some(id);
        true
    }

    /// Puts an idea as an action left it into the lists: replaced where listed, and out of the
    /// queue once it no longer waits for operators.
    fn replace(&mut self, idea: &IdeaView) {
        for i in self.latest.iter_mut().filter(|i| i.id == idea.id) {
            *i = idea.clone();
        }
        if idea.state.needs_operator() {
            for i in self.queue.iter_mut().filter(|i| i.id == idea.id) {
                *i = idea.clone();
            }
        } else {
            self.queue.retain(|i| i.id != idea.id);
            if !self.latest.iter().any(|i| i.id == idea.id) {
                self.latest.insert(0, idea.clone());
            }
        }
    }
}

impl App {
    /// What the feed should fetch for the ideas view now.
    pub fn ideas_focus(&self) -> IdeasFocus {
        IdeasFocus {
            queue: self.access.can_act(),
            selected: self.ideas_pane.selected.clone(),
        }
    }

    /// Effects that (re)point the feed at the ideas view's data.
    fn ideas_focused(&self) -> Effects {
        Effects::with(Command::Ideas(Some(self.ideas_focus())))
    }

    pub(super) fn ideas_key(&mut self, key: KeyEvent) -> Effects {
        let pane = &mut self.ideas_pane;
        let moved = match key.code {
            KeyCode::Esc => return self.show(View::Fleet),
            KeyCode::Up | KeyCode::Char('k') => pane.move_by(-1),
            KeyCode::Down | KeyCode::Char('j') => pane.move_by(1),
            KeyCode::PageUp => pane.move_by(-PAGE),
            KeyCode::PageDown => pane.move_by(PAGE),
            KeyCode::Home | KeyCode::Char('g') => pane.move_by(isize::MIN),
            KeyCode::End | KeyCode::Char('G') => pane.move_by(isize::MAX),
            KeyCode::Char('a') => return self.moderate(Moderation::Approve),
            KeyCode::Char('x') => return self.moderate(Moderation::Reject),
            _ => return Effects::none(),
        };
        if !moved {
            return Effects::none();
        }
        self.ideas_pane.detail = None;
        self.ideas_pane.detail_error = None;
        self.ideas_focused()
    }

    /// `a` and `x`: approve at once, or ask for the rejection's reason first.
    fn moderate(&mut self, action: Moderation) -> Effects {
        let verb = action.verb();
        if !self.access.can_act() {
            self.notice(format!(
                "read-only: a {} token cannot {verb} an idea",
                self.access.label()
            ));
            return Effects::redraw();
        }
        let pane = &self.ideas_pane;
        if let Some((id, pending)) = &pane.pending {
            let text = format!(
                "still waiting for the answer to {} {}",
                pending.verb(),
                pane.code_of(id)
            );
            self.notice(text);
            return Effects::redraw();
        }
        let Some(idea) = pane.current() else {
            self.notice(format!("no idea selected to {verb}"));
            return Effects::redraw();
        };
        let (id, code) = (idea.id.clone(), idea.tracking_code.clone());
        match action {
            Moderation::Approve => self.send(id, code, action, None),
            Moderation::Reject => {
                self.ideas_pane.draft = Some(RejectDraft {
                    id,
                    code,
                    reason: String::new(),
                });
                self.mode = Mode::Reason;
                Effects::redraw()
            }
        }
    }

    fn send(&mut self, id: String, code: String, action: Moderation, reason: Option<String>) -> Effects {
        let doing = match action {
            Moderation::Approve => "approving",
            Moderation::Reject => "rejecting",
        };
        self.notice(format!("{doing} {code}…"));
        self.ideas_pane.pending = Some((id.clone(), action));
        Effects::with(Command::Moderate { id, action, reason })
    }

    /// Keys while typing a rejection's reason: everything is text but ⏎ and esc.
    pub(super) fn reason_key(&mut self, key: KeyEvent) -> Effects {
        let Some(draft) = self.ideas_pane.draft.as_mut() else {
            self.mode = Mode::Normal;
            return Effects::redraw();
        };
        match key.code {
            KeyCode::Esc => {
                let code = draft.code.clone();
                self.ideas_pane.draft = None;
                self.mode = Mode::Normal;
                self.notice(format!("{code} not rejected"));
            }
            KeyCode::Enter if draft.reason.trim().is_empty() => {
                self.notice("a rejection needs a reason (esc cancels)");
            }
            KeyCode::Enter => {
                let RejectDraft { id, code, reason } = draft.clone();
                self.ideas_pane.draft = None;
                self.mode = Mode::Normal;
                return self.send(id, code, Moderation::Reject, Some(reason.trim().to_owned()));
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

    /// A page of ideas (or the queue) arrived, or failed.
    pub(super) fn on_ideas(&mut self, queue: bool, result: Result<IdeaPage, ApiError>) -> Effects {
        let pane = &mut self.ideas_pane;
        match (queue, result) {
            (_, Err(ApiError::NotFound { .. })) => {
                // The route went away (or never was): back to the "not available" frame.
                self.ideas = Availability::Missing;
                return Effects::redraw();
            }
            (true, Ok(page)) => {
                pane.queue = page.items;
                pane.queue_error = None;
            }
            (true, Err(e)) => pane.queue_error = Some(e),
            (false, Ok(page)) => {
                pane.latest = page.items;
                pane.loaded_at = Some(self.now);
                pane.error = None;
                self.ideas = Availability::Present;
            }
            (false, Err(e)) => pane.error = Some(e),
        }
        if self.ideas_pane.settle() {
            self.ideas_pane.detail = None;
            self.ideas_pane.detail_error = None;
            if self.view == View::Ideas {
                return self.ideas_focused();
            }
        }
        Effects::redraw()
    }

    pub(super) fn on_idea_detail(&mut self, id: &str, result: Result<IdeaDetail, ApiError>) -> Effects {
        let pane = &mut self.ideas_pane;
        if pane.selected.as_deref() != Some(id) {
            return Effects::none();
        }
        match result {
            Ok(d) => {
                pane.detail = Some(d);
                pane.detail_error = None;
            }
            Err(e) => pane.detail_error = Some(e),
        }
        Effects::redraw()
    }

    pub(super) fn on_moderated(
        &mut self,
        id: &str,
        action: Moderation,
        result: Result<IdeaDetail, ApiError>,
    ) -> Effects {
        let pane = &mut self.ideas_pane;
        if pane.pending.as_ref().is_some_and(|(p, _)| p == id) {
            pane.pending = None;
        }
        let code = pane.code_of(id);
        let outcome = match result {
            Ok(detail) => {
                pane.replace(&detail.idea);
                let text = format!("{} {code}: now {}", action.past(), detail.idea.state);
                if pane.selected.as_deref() == Some(id) {
                    pane.detail = Some(detail);
                    pane.detail_error = None;
                }
                Outcome { text, ok: true }
            }
            Err(e) => Outcome {
                text: format!("cannot {} {code}: {}", action.verb(), explain(&e)),
                ok: false,
            },
        };
        self.notice(outcome.text.clone());
        self.ideas_pane.outcome = Some(outcome);
        // Other ideas may have moved too (a rejection can free a duplicate's original…).
        Effects::with(Command::Refresh)
    }
}

/// An API error in a status line: the server's problem detail first, then the status.
pub fn explain(e: &ApiError) -> String {
    match e {
        ApiError::Status { status, detail } => format!("{detail} ({status})"),
        ApiError::Forbidden { detail } => format!("{detail} (403)"),
        ApiError::NotFound { detail } => format!("{detail} (404)"),
        ApiError::Unauthorized { detail } => format!("token refused: {detail} (401)"),
        ApiError::Unreachable { reason, .. } => format!("control plane unreachable: {reason}"),
        ApiError::Decode(d) => format!("unreadable answer: {d}"),
    }
}

#[cfg(test)]
mod tests;
