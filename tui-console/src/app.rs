//! The console's state and its one `update` function: events in, state changes and commands
//! out. No I/O happens here, so every key press and every API answer can be tested directly.

use std::time::Duration;

use chrono::{DateTime, FixedOffset, TimeDelta, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::access::Access;
use crate::api::{ApiError, FleetSummary, Moderation, Readiness, StatusChange, Steer};
use crate::event::{ApiEvent, Event, StreamEvent};

pub mod alerts;
pub mod bench;
pub mod fleet;
pub mod ideas;
mod incoming;
pub mod rollouts;

pub use alerts::{Alert, AlertKind, Alerts};
pub use bench::{BenchPane, Window};
pub use fleet::{FleetData, SortKey, StateFilter, Table};
pub use ideas::{IdeaRow, IdeasFocus, IdeasPane, Outcome, RejectDraft};
pub use rollouts::{RolloutsFocus, RolloutsPane, SteerDraft};

/// How long a notice stays in the footer.
const NOTICE_FOR: TimeDelta = TimeDelta::seconds(5);
/// Rows moved by Page Up / Page Down.
const PAGE: isize = 10;

/// The screens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    #[default]
    Fleet,
    Bench,
    Rollouts,
    Ideas,
}

/// How keys are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Normal,
    /// Typing a search: characters go into the filter.
    Search,
    /// The help overlay is open.
    Help,
    /// Typing the reason for rejecting an idea, or for aborting or rolling back a rollout.
    Reason,
}

/// Features that arrive with later control-plane releases; the console probes for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    Rollouts,
    Ideas,
}

impl Feature {
    pub const ALL: [Feature; 2] = [Self::Rollouts, Self::Ideas];

    /// The list route whose 404 means "not on this control plane".
    pub fn path(self) -> &'static str {
        match self {
            Self::Rollouts => "/api/v1/rollouts",
            Self::Ideas => "/api/v1/ideas",
        }
    }
}

/// Whether a feature's routes exist.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Availability {
    #[default]
    Unknown,
    /// 404: this control plane does not have it yet.
    Missing,
    Present,
    Failed(ApiError),
}

/// A request that keeps failing.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub error: ApiError,
    pub first: DateTime<Utc>,
    pub attempts: u32,
}

/// The live event stream's state.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum StreamState {
    #[default]
    Connecting,
    Live {
        since: DateTime<Utc>,
    },
    /// Down: the console relies on polling until it reconnects.
    Down {
        error: ApiError,
        since: DateTime<Utc>,
    },
}

/// Which bench (and window) the feed should fetch details for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Focus {
    pub id: String,
    pub window: Window,
}

/// What `update` asks the runtime to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Quit,
    /// Poll everything now instead of at the next interval.
    Refresh,
    /// Fetch (and keep refreshing) one bench's detail and telemetry, or stop.
    Focus(Option<Focus>),
    /// Fetch (and keep refreshing) the ideas view's lists and selected idea, or stop. The same
    /// focus again fetches everything again.
    Ideas(Option<IdeasFocus>),
    /// Approve or reject an idea through the API; the answer comes back as
    /// [`ApiEvent::Moderated`].
    Moderate {
        id: String,
        action: Moderation,
        reason: Option<String>,
    },
    /// Fetch (and keep refreshing) the rollouts and the selected rollout, or stop. The same
    /// focus again fetches everything again.
    Rollouts(Option<RolloutsFocus>),
    /// Pause, resume, abort or roll back a rollout through the API; the answer comes back as
    /// [`ApiEvent::Steered`].
    Steer {
        id: String,
        action: Steer,
        reason: Option<String>,
    },
}

/// The outcome of one `update`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Effects {
    /// The screen changed and must be drawn.
    pub redraw: bool,
    pub commands: Vec<Command>,
}

impl Effects {
    fn none() -> Self {
        Self::default()
    }

    fn redraw() -> Self {
        Self {
            redraw: true,
            commands: Vec::new(),
        }
    }

    fn with(command: Command) -> Self {
        Self {
            redraw: true,
            commands: vec![command],
        }
    }
}

/// Everything the console shows.
#[derive(Debug, Clone, PartialEq)]
pub struct App {
    /// The time of the last tick; every age on screen is relative to it.
    pub now: DateTime<Utc>,
    /// The operator's UTC offset, for clock times on screen.
    pub tz: FixedOffset,
    pub api_url: String,
    pub access: Access,
    /// Poll interval, shown to the operator.
    pub refresh: Duration,
    pub view: View,
    pub mode: Mode,
    pub fleet: FleetData,
    pub table: Table,
    /// When the bench list last arrived.
    pub loaded_at: Option<DateTime<Utc>>,
    /// Why the bench list cannot be fetched, while it cannot.
    pub fleet_error: Option<Failure>,
    pub summary: Option<FleetSummary>,
    /// `/readyz`; `None` until the first answer.
    pub health: Option<Result<Readiness, ApiError>>,
    pub stream: StreamState,
    pub bench: Option<BenchPane>,
    pub alerts: Alerts,
    pub rollouts: Availability,
    pub ideas: Availability,
    /// The ideas view's data.
    pub ideas_pane: IdeasPane,
    /// The rollouts view's data.
    pub rollouts_pane: RolloutsPane,
    /// A short message in the footer and when it was set.
    pub notice: Option<(String, DateTime<Utc>)>,
}

impl App {
    pub fn new(api_url: impl Into<String>, access: Access, refresh: Duration, now: DateTime<Utc>) -> Self {
        Self {
            now,
            tz: FixedOffset::east_opt(0).expect("UTC is a valid offset"),
            api_url: api_url.into(),
            access,
            refresh,
            view: View::Fleet,
            mode: Mode::Normal,
            fleet: FleetData::default(),
            table: Table::default(),
            loaded_at: None,
            fleet_error: None,
            summary: None,
            health: None,
            stream: StreamState::Connecting,
            bench: None,
            alerts: Alerts::default(),
            rollouts: Availability::Unknown,
            ideas: Availability::Unknown,
            ideas_pane: IdeasPane::default(),
            rollouts_pane: RolloutsPane::default(),
            notice: None,
        }
    }

    /// Handles one event.
    pub fn update(&mut self, event: Event) -> Effects {
        match event {
            Event::Tick(now) => {
                self.now = now;
                if self.notice.as_ref().is_some_and(|(_, at)| now - *at >= NOTICE_FOR) {
                    self.notice = None;
                }
                Effects::redraw()
            }
            Event::Resize(..) => Effects::redraw(),
            Event::Key(key) => self.on_key(key),
            Event::Api(api) => self.on_api(api),
        }
    }

    /// The availability of a feature.
    pub fn availability(&self, feature: Feature) -> &Availability {
        match feature {
            Feature::Rollouts => &self.rollouts,
            Feature::Ideas => &self.ideas,
        }
    }

    /// The low-battery threshold: the summary's, or the default.
    pub fn low_battery_pct(&self) -> f64 {
        self.summary
            .as_ref()
            .map_or(alerts::LOW_BATTERY_PCT, |s| s.low_battery_threshold_pct)
    }

    fn notice(&mut self, text: impl Into<String>) {
        self.notice = Some((text.into(), self.now));
    }

    fn on_key(&mut self, key: KeyEvent) -> Effects {
        if key.kind == KeyEventKind::Release {
            return Effects::none();
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Effects::with(Command::Quit);
        }
        match self.mode {
            Mode::Help => match key.code {
                KeyCode::Char('?') | KeyCode::Esc | KeyCode::Enter => {
                    self.mode = Mode::Normal;
                    Effects::redraw()
                }
                KeyCode::Char('q') => Effects::with(Command::Quit),
                _ => Effects::none(),
            },
            Mode::Search => self.search_key(key),
            Mode::Reason if self.view == View::Rollouts => self.steer_reason_key(key),
            Mode::Reason => self.reason_key(key),
            Mode::Normal => self.normal_key(key),
        }
    }

    fn search_key(&mut self, key: KeyEvent) -> Effects {
        match key.code {
            KeyCode::Enter => self.mode = Mode::Normal,
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                self.table.text.clear();
            }
            KeyCode::Backspace => {
                self.table.text.pop();
            }
            KeyCode::Up => self.table.move_by(&self.fleet, -1),
            KeyCode::Down => self.table.move_by(&self.fleet, 1),
            KeyCode::Char(c) if !key.modifiers.intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) => {
                self.table.text.push(c);
            }
            _ => return Effects::none(),
        }
        self.table.settle(&self.fleet);
        Effects::redraw()
    }

    fn normal_key(&mut self, key: KeyEvent) -> Effects {
        match key.code {
            KeyCode::Char('q') => return Effects::with(Command::Quit),
            KeyCode::Char('?') => {
                self.mode = Mode::Help;
                return Effects::redraw();
            }
            KeyCode::Char('r') => {
                self.notice("refreshing…");
                return Effects::with(Command::Refresh);
            }
            KeyCode::Tab => return self.show(next_view(self.view, 1)),
            KeyCode::BackTab => return self.show(next_view(self.view, -1)),
            KeyCode::Char('1') => return self.show(View::Fleet),
            KeyCode::Char('2') => return self.show(View::Rollouts),
            KeyCode::Char('3') => return self.show(View::Ideas),
            _ => {}
        }
        match self.view {
            View::Fleet => self.fleet_key(key),
            View::Bench => self.bench_key(key),
            View::Rollouts if self.rollouts == Availability::Present => self.rollouts_key(key),
            View::Rollouts => self.feature_key(Feature::Rollouts, key),
            View::Ideas if self.ideas == Availability::Present => self.ideas_key(key),
            View::Ideas => self.feature_key(Feature::Ideas, key),
        }
    }

    /// Switches to a top-level view, stopping the bench feed when leaving the bench view and
    /// starting or stopping the ideas and rollouts feeds with their views.
    fn show(&mut self, view: View) -> Effects {
        let before = std::mem::replace(&mut self.view, view);
        let mut effects = Effects::redraw();
        if before == View::Bench && view != View::Bench {
            self.bench = None;
            effects.commands.push(Command::Focus(None));
        }
        if before != View::Ideas && view == View::Ideas {
            effects.commands.push(Command::Ideas(Some(self.ideas_focus())));
        } else if before == View::Ideas && view != View::Ideas {
            effects.commands.push(Command::Ideas(None));
        }
        if before != View::Rollouts && view == View::Rollouts {
            effects.commands.push(Command::Rollouts(Some(self.rollouts_focus())));
        } else if before == View::Rollouts && view != View::Rollouts {
            effects.commands.push(Command::Rollouts(None));
        }
        effects
    }

    fn fleet_key(&mut self, key: KeyEvent) -> Effects {
        let t = &mut self.table;
        match key.code {
            KeyCode::Up | KeyCode::Char('k') => t.move_by(&self.fleet, -1),
            KeyCode::Down | KeyCode::Char('j') => t.move_by(&self.fleet, 1),
            KeyCode::PageUp => t.move_by(&self.fleet, -PAGE),
            KeyCode::PageDown => t.move_by(&self.fleet, PAGE),
            KeyCode::Home | KeyCode::Char('g') => t.select_end(&self.fleet, false),
            KeyCode::End | KeyCode::Char('G') => t.select_end(&self.fleet, true),
            KeyCode::Enter => {
                let Some(id) = t.current(&self.fleet).map(|b| b.id.clone()) else {
                    return Effects::none();
                };
                return self.open_bench(id, Window::default());
            }
            KeyCode::Char('/') => self.mode = Mode::Search,
            KeyCode::Char('s') => {
                t.sort = t.sort.next();
                t.descending = false;
            }
            KeyCode::Char('S') => t.descending = !t.descending,
            KeyCode::Char('f') => t.state = t.state.next(),
            KeyCode::Char('m') => {
                let all = self.fleet.municipalities();
                t.municipality = match &t.municipality {
                    None => all.first().cloned(),
                    Some(m) => all.iter().skip_while(|x| *x != m).nth(1).cloned(),
                };
            }
            KeyCode::Char('c') | KeyCode::Esc => {
                if !t.is_filtered() {
                    return Effects::none();
                }
                t.state = StateFilter::All;
                t.municipality = None;
                t.text.clear();
            }
            _ => return Effects::none(),
        }
        self.table.settle(&self.fleet);
        Effects::redraw()
    }

    fn open_bench(&mut self, id: String, window: Window) -> Effects {
        self.table.selected = Some(id.clone());
        self.bench = Some(BenchPane::new(id.clone(), window));
        self.view = View::Bench;
        Effects::with(Command::Focus(Some(Focus { id, window })))
    }

    fn bench_key(&mut self, key: KeyEvent) -> Effects {
        let Some(pane) = &self.bench else {
            return self.show(View::Fleet);
        };
        let window = pane.window;
        match key.code {
            KeyCode::Esc | KeyCode::Backspace | KeyCode::Char('h') => self.show(View::Fleet),
            KeyCode::Char('w') => {
                let id = pane.id.clone();
                self.open_bench(id, window.next())
            }
            KeyCode::Left | KeyCode::Right | KeyCode::Char('[') | KeyCode::Char(']') => {
                let back = matches!(key.code, KeyCode::Left | KeyCode::Char('['));
                let before = self.table.selected.clone();
                self.table.move_by(&self.fleet, if back { -1 } else { 1 });
                match self.table.selected.clone() {
                    Some(id) if Some(&id) != before.as_ref() => self.open_bench(id, window),
                    _ => Effects::none(),
                }
            }
            _ => Effects::none(),
        }
    }

    fn feature_key(&mut self, feature: Feature, key: KeyEvent) -> Effects {
        let action = match (feature, key.code) {
            (_, KeyCode::Esc) => return self.show(View::Fleet),
            (Feature::Rollouts, KeyCode::Char('p')) => "pause a rollout",
            (Feature::Rollouts, KeyCode::Char('u')) => "resume a rollout",
            (Feature::Rollouts, KeyCode::Char('a')) => "abort a rollout",
            (Feature::Rollouts, KeyCode::Char('b')) => "roll back a rollout",
            (Feature::Ideas, KeyCode::Char('a')) => "approve an idea",
            (Feature::Ideas, KeyCode::Char('x')) => "reject an idea",
            _ => return Effects::none(),
        };
        let text = if !self.access.can_act() {
            format!("read-only: a {} token cannot {action}", self.access.label())
        } else {
            match self.availability(feature) {
                Availability::Present => format!("this console cannot {action} yet"),
                _ => format!("cannot {action}: not available on this control plane yet"),
            }
        };
        self.notice(text);
        Effects::redraw()
    }
}

fn next_view(view: View, step: i32) -> View {
    const ORDER: [View; 3] = [View::Fleet, View::Rollouts, View::Ideas];
    let i: i32 = match view {
        View::Fleet | View::Bench => 0,
        View::Rollouts => 1,
        View::Ideas => 2,
    };
    ORDER[(i + 3 + step).rem_euclid(3) as usize]
}

#[cfg(test)]
mod tests;
