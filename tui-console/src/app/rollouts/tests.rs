//! `update` tests of the rollouts view: its feed, the table's order, selection, steering (with
//! a typed reason for abort and rollback), problem details, live events, read-only tokens and a
//! missing route.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use protocol::Role;

use super::*;
use crate::api::RolloutState;
use crate::event::{ApiEvent, Event, StreamEvent};
use crate::testing::{self, rollout, rollout_id};

fn key(app: &mut App, code: KeyCode) -> Effects {
    app.update(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn notice(app: &App) -> String {
    app.notice.as_ref().map(|(t, _)| t.clone()).unwrap_or_default()
}

fn focus(selected: Option<u32>) -> Command {
    Command::Rollouts(Some(RolloutsFocus {
        selected: selected.map(rollout_id),
    }))
}

#[test]
fn opening_the_view_starts_its_feed_and_leaving_stops_it() {
    let mut app = testing::app();
    assert_eq!(key(&mut app, KeyCode::Char('2')).commands, vec![focus(None)]);
    assert_eq!(app.view, View::Rollouts);
    let ideas = Command::Ideas(Some(app.ideas_focus()));
    assert_eq!(
        key(&mut app, KeyCode::Tab).commands,
        vec![ideas, Command::Rollouts(None)]
    );
    assert_eq!(
        key(&mut app, KeyCode::BackTab).commands,
        vec![Command::Ideas(None), focus(None)]
    );
    // Before the list answers, the view is the "checking" frame: esc still goes back.
    assert_eq!(key(&mut app, KeyCode::Esc).commands, vec![Command::Rollouts(None)]);
    assert_eq!(app.view, View::Fleet);
}

#[test]
fn the_list_proves_the_route_selects_the_active_rollout_and_asks_for_it() {
    let mut app = testing::app();
    key(&mut app, KeyCode::Char('2'));
    // The server lists newest first; an active rollout goes first whatever its age.
    let mut list = testing::rollouts();
    list.rotate_left(1);
    let fx = app.update(Event::Api(ApiEvent::Rollouts(Ok(list))));
    assert_eq!(fx.commands, vec![focus(Some(1))]);
    assert_eq!(app.rollouts, Availability::Present);
    assert_eq!(app.rollouts_pane.loaded_at, Some(testing::now()));
    let order: Vec<String> = app.rollouts_pane.rows().iter().map(|r| r.id.clone()).collect();
    assert_eq!(order, [rollout_id(1), rollout_id(2), rollout_id(3)]);

    let fx = app.update(Event::Api(ApiEvent::RolloutDetail {
        id: rollout_id(1),
        result: Ok(rollout(1)),
    }));
    assert!(fx.redraw);
    assert_eq!(app.rollouts_pane.current_detail().map(|d| d.benches.len()), Some(7));
    // An answer for a rollout no longer selected is dropped.
    let fx = app.update(Event::Api(ApiEvent::RolloutDetail {
        id: rollout_id(3),
        result: Ok(rollout(3)),
    }));
    assert_eq!(fx, Effects::none());
}

#[test]
fn moving_the_selection_asks_for_the_new_rollout() {
    let mut app = testing::rollouts_app();
    assert_eq!(key(&mut app, KeyCode::Down).commands, vec![focus(Some(2))]);
    assert_eq!(
        app.rollouts_pane.detail, None,
        "the old detail is not shown for the new row"
    );
    assert_eq!(key(&mut app, KeyCode::End).commands, vec![focus(Some(3))]);
    assert_eq!(key(&mut app, KeyCode::Down), Effects::none(), "already at the end");
    assert_eq!(key(&mut app, KeyCode::Char('g')).commands, vec![focus(Some(1))]);
}

#[test]
fn pause_is_sent_at_once_and_the_answer_updates_list_and_detail() {
    let mut app = testing::rollouts_app();
    let fx = key(&mut app, KeyCode::Char('p'));
    assert_eq!(
        fx.commands,
        vec![Command::Steer {
            id: rollout_id(1),
            action: Steer::Pause,
            reason: None
        }]
    );
    assert_eq!(notice(&app), "pausing 7c1e9a51…");
    // A second action while the first is unanswered is refused.
    assert_eq!(key(&mut app, KeyCode::Char('a')).commands, Vec::new());
    assert_eq!(notice(&app), "still waiting for the answer to pause 7c1e9a51");

    let mut paused = rollout(1);
    paused.state = RolloutState::Paused;
    paused.paused_at = Some(testing::now());
    let fx = app.update(Event::Api(ApiEvent::Steered {
        id: rollout_id(1),
        action: Steer::Pause,
        result: Ok(paused),
    }));
    assert_eq!(fx.commands, vec![Command::Refresh]);
    assert_eq!(app.rollouts_pane.pending, None);
    assert_eq!(app.rollouts_pane.list[0].state, RolloutState::Paused);
    assert_eq!(
        app.rollouts_pane.current_detail().map(|d| d.state),
        Some(RolloutState::Paused)
    );
    assert_eq!(notice(&app), "paused 7c1e9a51: now paused");
    assert!(app.rollouts_pane.outcome.as_ref().is_some_and(|o| o.ok));
    // Pausing again makes no sense: said locally, nothing sent.
    assert_eq!(key(&mut app, KeyCode::Char('p')).commands, Vec::new());
    assert_eq!(notice(&app), "cannot pause 7c1e9a51: it is paused");
    assert_eq!(
        key(&mut app, KeyCode::Char('u')).commands,
        vec![Command::Steer {
            id: rollout_id(1),
            action: Steer::Resume,
            reason: None
        }]
    );
}

#[test]
fn abort_asks_for_a_reason_and_sends_it() {
    let mut app = testing::rollouts_app();
    assert_eq!(key(&mut app, KeyCode::Char('a')).commands, Vec::new());
    assert_eq!(app.mode, Mode::Reason);
    // In the prompt, the view's keys are text: `q` does not quit, `j` does not move.
    type_text(&mut app, "  ");
    assert_eq!(key(&mut app, KeyCode::Enter).commands, Vec::new());
    assert_eq!(notice(&app), "say why you abort it (esc cancels)");
    type_text(&mut app, "prijedor refused; quit j");
    key(&mut app, KeyCode::Backspace);
    key(&mut app, KeyCode::Backspace);
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(
        fx.commands,
        vec![Command::Steer {
            id: rollout_id(1),
            action: Steer::Abort,
            reason: Some("prijedor refused; quit".into())
        }]
    );
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.rollouts_pane.draft, None);
}

#[test]
fn esc_in_the_prompt_cancels_and_rollback_needs_a_completed_rollout() {
    let mut app = testing::rollouts_app();
    assert_eq!(key(&mut app, KeyCode::Char('b')).commands, Vec::new());
    assert_eq!(notice(&app), "cannot roll back 7c1e9a51: it is running");
    assert_eq!(app.mode, Mode::Normal);
    key(&mut app, KeyCode::Char('a'));
    type_text(&mut app, "oops");
    assert_eq!(key(&mut app, KeyCode::Esc).commands, Vec::new());
    assert_eq!(
        (app.mode, app.view),
        (Mode::Normal, View::Rollouts),
        "esc closes the prompt only"
    );
    assert_eq!(notice(&app), "7c1e9a51 not aborted");

    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('b'));
    type_text(&mut app, "brownouts");
    assert_eq!(
        key(&mut app, KeyCode::Enter).commands,
        vec![Command::Steer {
            id: rollout_id(2),
            action: Steer::Rollback,
            reason: Some("brownouts".into())
        }]
    );
}

#[test]
fn a_refusal_shows_the_problem_detail() {
    let mut app = testing::rollouts_app();
    key(&mut app, KeyCode::Char('p'));
    let fx = app.update(Event::Api(ApiEvent::Steered {
        id: rollout_id(1),
        action: Steer::Pause,
        result: Err(ApiError::Status {
            status: 409,
            detail: "rollout is not running".into(),
        }),
    }));
    assert_eq!(fx.commands, vec![Command::Refresh]);
    assert_eq!(notice(&app), "cannot pause 7c1e9a51: rollout is not running (409)");
    let outcome = app.rollouts_pane.outcome.clone().unwrap();
    assert!(!outcome.ok);
    assert_eq!(
        app.rollouts_pane.list[0].state,
        RolloutState::Running,
        "nothing changed"
    );
    assert_eq!(app.rollouts_pane.pending, None, "the next action may go");
}

#[test]
fn read_only_tokens_see_rollouts_but_cannot_steer_them() {
    let mut app = testing::rollouts_app_as(Role::Viewer);
    for c in ['p', 'u', 'a', 'b'] {
        assert_eq!(key(&mut app, KeyCode::Char(c)).commands, Vec::new());
    }
    assert_eq!(notice(&app), "read-only: a viewer token cannot roll back a rollout");
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.rollouts_pane.pending, None);
}

#[test]
fn live_events_refetch_while_the_view_is_open_only() {
    let mut app = testing::rollouts_app();
    let mut changed = rollout(1).summary();
    changed.step = 2;
    let fx = app.update(Event::Api(ApiEvent::Stream(StreamEvent::RolloutChanged(
        changed.clone(),
    ))));
    assert_eq!(fx.commands, vec![focus(Some(1))]);
    assert!(fx.redraw);
    assert_eq!(app.rollouts_pane.list[0].step, 2, "the list shows the event at once");
    let status = app.fleet.config["ravno-01"].clone();
    let fx = app.update(Event::Api(ApiEvent::Stream(StreamEvent::BenchConfig(status))));
    assert_eq!(fx.commands, vec![focus(Some(1))]);

    key(&mut app, KeyCode::Esc);
    let fx = app.update(Event::Api(ApiEvent::Stream(StreamEvent::RolloutChanged(changed))));
    assert_eq!(fx, Effects::none());
    let mut status = app.fleet.config["ravno-01"].clone();
    status.reported_version = Some(8);
    let fx = app.update(Event::Api(ApiEvent::Stream(StreamEvent::BenchConfig(status))));
    assert!(fx.commands.is_empty());
    assert_eq!(
        app.fleet.config["ravno-01"].reported_version,
        Some(8),
        "kept for the fleet"
    );
}

#[test]
fn a_missing_route_shows_the_not_available_frame() {
    let mut app = testing::rollouts_app();
    app.update(Event::Api(ApiEvent::Rollouts(Err(ApiError::NotFound {
        detail: "no route".into(),
    }))));
    assert_eq!(app.rollouts, Availability::Missing);
    // Its keys are the placeholder's now: a notice, no request.
    assert_eq!(key(&mut app, KeyCode::Char('p')).commands, Vec::new());
    assert_eq!(
        notice(&app),
        "cannot pause a rollout: not available on this control plane yet"
    );
}

#[test]
fn a_failed_list_keeps_the_old_one_and_says_why() {
    let mut app = testing::rollouts_app();
    let gone = ApiError::Unreachable {
        url: "http://127.0.0.1:8080".into(),
        reason: "Connection refused (os error 111)".into(),
    };
    app.update(Event::Api(ApiEvent::Rollouts(Err(gone.clone()))));
    assert_eq!(app.rollouts_pane.error, Some(gone));
    assert_eq!(app.rollouts_pane.list.len(), 3);
    assert_eq!(app.rollouts, Availability::Present);
}
