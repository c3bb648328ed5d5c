//! `update` tests of the ideas view: feeding it, the table's order, selection, approving and
//! rejecting (with a typed reason), problem details, read-only tokens and a missing route.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use protocol::{IdeaState, Role};

use super::*;
use crate::event::{ApiEvent, Event};
use crate::testing::{self, idea_detail, idea_id};

fn key(app: &mut App, code: KeyCode) -> Effects {
    app.update(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn codes(app: &App) -> Vec<String> {
    app.ideas_pane
        .rows()
        .iter()
        .map(|r| r.idea.tracking_code.clone())
        .collect()
}

fn notice(app: &App) -> String {
    app.notice.as_ref().map(|(t, _)| t.clone()).unwrap_or_default()
}

fn focus(selected: Option<u32>) -> Command {
    Command::Ideas(Some(IdeasFocus {
        queue: true,
        selected: selected.map(idea_id),
    }))
}

#[test]
fn opening_the_view_starts_its_feed_and_leaving_stops_it() {
    let mut app = testing::app();
    assert_eq!(key(&mut app, KeyCode::Char('3')).commands, vec![focus(None)]);
    assert_eq!(app.view, View::Ideas);
    assert_eq!(key(&mut app, KeyCode::Char('3')).commands, Vec::new(), "already there");
    assert_eq!(key(&mut app, KeyCode::Tab).commands, vec![Command::Ideas(None)]);
    assert_eq!(app.view, View::Fleet);
    assert_eq!(key(&mut app, KeyCode::BackTab).commands, vec![focus(None)]);
    assert_eq!(key(&mut app, KeyCode::Esc).commands, vec![Command::Ideas(None)]);
}

#[test]
fn the_first_answer_selects_the_first_idea_and_asks_for_its_history() {
    let mut app = testing::app();
    key(&mut app, KeyCode::Char('3'));
    let fx = app.update(Event::Api(ApiEvent::IdeaQueue(Ok(testing::idea_queue()))));
    assert_eq!(fx.commands, vec![focus(Some(1))]);
    assert_eq!(app.ideas_pane.selected, Some(idea_id(1)));
    let fx = app.update(Event::Api(ApiEvent::Ideas(Ok(testing::idea_latest()))));
    assert_eq!(fx.commands, Vec::new(), "the selection did not change");
    assert_eq!(app.ideas, Availability::Present, "the list answering proves the route");
    assert_eq!(app.ideas_pane.loaded_at, Some(testing::now()));
}

#[test]
fn the_queue_comes_first_and_listed_ideas_are_not_repeated() {
    let app = testing::ideas_app();
    assert_eq!(
        codes(&app),
        [
            "MOS-2026-0042",
            "MAG-2026-0007",
            "TRE-2026-0003",
            "ZEP-2026-0011",
            "ZEP-2026-0012",
            "RAV-2026-0002",
            "MOS-2026-0031"
        ]
    );
    let queued: Vec<bool> = app.ideas_pane.rows().iter().map(|r| r.queued).collect();
    assert_eq!(queued, [true, true, true, false, false, false, false]);
    assert_eq!(app.ideas_pane.detail.as_ref().unwrap().history.len(), 2);
}

#[test]
fn moving_the_selection_asks_for_that_idea_and_ignores_stale_answers() {
    let mut app = testing::ideas_app();
    let fx = key(&mut app, KeyCode::Down);
    assert_eq!(fx.commands, vec![focus(Some(2))]);
    assert_eq!(
        app.ideas_pane.detail, None,
        "the old history is not shown for the new idea"
    );
    // A late answer for the idea selected before is dropped.
    let fx = app.update(Event::Api(ApiEvent::IdeaDetail {
        id: idea_id(1),
        result: Ok(idea_detail(&idea_id(1))),
    }));
    assert_eq!(fx, Effects::none());
    assert_eq!(app.ideas_pane.detail, None);
    app.update(Event::Api(ApiEvent::IdeaDetail {
        id: idea_id(2),
        result: Ok(idea_detail(&idea_id(2))),
    }));
    assert_eq!(
        app.ideas_pane.detail.as_ref().unwrap().idea.tracking_code,
        "MAG-2026-0007"
    );

    assert_eq!(key(&mut app, KeyCode::End).commands, vec![focus(Some(7))]);
    assert_eq!(key(&mut app, KeyCode::Down), Effects::none(), "stops at the last row");
    assert_eq!(key(&mut app, KeyCode::Char('g')).commands, vec![focus(Some(1))]);
    assert_eq!(key(&mut app, KeyCode::Up), Effects::none());
}

#[test]
fn a_vanished_idea_moves_the_selection_to_the_first_row() {
    let mut app = testing::ideas_app();
    let mut queue = testing::idea_queue();
    queue.items.remove(0);
    let mut latest = testing::idea_latest();
    latest.items.remove(0);
    app.update(Event::Api(ApiEvent::IdeaQueue(Ok(queue))));
    assert_eq!(
        app.ideas_pane.selected,
        Some(idea_id(1)),
        "still listed among the newest"
    );
    let fx = app.update(Event::Api(ApiEvent::Ideas(Ok(latest))));
    assert_eq!(fx.commands, vec![focus(Some(2))]);
    assert_eq!(codes(&app)[0], "MAG-2026-0007");
}

#[test]
fn approving_sends_once_and_a_success_moves_the_idea_out_of_the_queue() {
    let mut app = testing::ideas_app();
    let fx = key(&mut app, KeyCode::Char('a'));
    assert_eq!(
        fx.commands,
        vec![Command::Moderate {
            id: idea_id(1),
            action: Moderation::Approve,
            reason: None,
        }]
    );
    assert_eq!(notice(&app), "approving MOS-2026-0042…");
    assert_eq!(key(&mut app, KeyCode::Char('a')).commands, Vec::new());
    assert_eq!(notice(&app), "still waiting for the answer to approve MOS-2026-0042");

    let mut after = idea_detail(&idea_id(1));
    after.idea.state = IdeaState::Offered;
    after.idea.offered_to = vec!["lda-mostar".into()];
    after.idea.flag = None;
    let fx = app.update(Event::Api(ApiEvent::Moderated {
        id: idea_id(1),
        action: Moderation::Approve,
        result: Ok(after),
    }));
    assert_eq!(fx.commands, vec![Command::Refresh], "the lists are fetched again");
    let pane = &app.ideas_pane;
    assert_eq!(pane.pending, None);
    assert_eq!(
        pane.outcome,
        Some(Outcome {
            text: "approved MOS-2026-0042: now offered".into(),
            ok: true
        })
    );
    assert_eq!(notice(&app), "approved MOS-2026-0042: now offered");
    assert!(!pane.queue.iter().any(|i| i.id == idea_id(1)));
    let listed = pane.latest.iter().find(|i| i.id == idea_id(1)).unwrap();
    assert_eq!(listed.state, IdeaState::Offered);
    assert_eq!(pane.detail.as_ref().unwrap().idea.offered_to, ["lda-mostar"]);
    assert_eq!(codes(&app)[..3], ["MAG-2026-0007", "TRE-2026-0003", "MOS-2026-0042"]);
}

#[test]
fn rejecting_asks_for_a_reason_and_every_key_is_text_meanwhile() {
    let mut app = testing::ideas_app();
    key(&mut app, KeyCode::Down);
    assert_eq!(key(&mut app, KeyCode::Char('x')).commands, Vec::new());
    assert_eq!(app.mode, Mode::Reason);
    assert_eq!(app.ideas_pane.draft.as_ref().unwrap().code, "MAG-2026-0007");

    assert_eq!(key(&mut app, KeyCode::Enter).commands, Vec::new());
    assert_eq!(notice(&app), "a rejection needs a reason (esc cancels)");
    assert_eq!(app.mode, Mode::Reason);

    type_text(&mut app, "  out of scope, q1");
    assert_eq!(app.view, View::Ideas, "`q` and `1` are text here");
    for _ in 0..4 {
        key(&mut app, KeyCode::Backspace);
    }
    assert_eq!(app.ideas_pane.draft.as_ref().unwrap().reason, "  out of scope");
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(
        fx.commands,
        vec![Command::Moderate {
            id: idea_id(2),
            action: Moderation::Reject,
            reason: Some("out of scope".into()),
        }]
    );
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.ideas_pane.draft, None);
    assert_eq!(notice(&app), "rejecting MAG-2026-0007…");
}

#[test]
fn escape_cancels_a_rejection() {
    let mut app = testing::ideas_app();
    key(&mut app, KeyCode::Char('x'));
    type_text(&mut app, "spam");
    let fx = key(&mut app, KeyCode::Esc);
    assert_eq!(fx.commands, Vec::new());
    assert_eq!(app.mode, Mode::Normal);
    assert_eq!(app.view, View::Ideas, "esc closes the prompt, not the view");
    assert_eq!(app.ideas_pane.draft, None);
    assert_eq!(app.ideas_pane.pending, None);
    assert_eq!(notice(&app), "MOS-2026-0042 not rejected");
}

#[test]
fn a_refusal_shows_the_problem_detail() {
    let mut app = testing::ideas_app();
    key(&mut app, KeyCode::Char('a'));
    let fx = app.update(Event::Api(ApiEvent::Moderated {
        id: idea_id(1),
        action: Moderation::Approve,
        result: Err(ApiError::Status {
            status: 409,
            detail: "idea is offered; approve needs held".into(),
        }),
    }));
    assert_eq!(fx.commands, vec![Command::Refresh]);
    let expected = "cannot approve MOS-2026-0042: idea is offered; approve needs held (409)";
    assert_eq!(notice(&app), expected);
    assert_eq!(
        app.ideas_pane.outcome,
        Some(Outcome {
            text: expected.into(),
            ok: false
        })
    );
    assert_eq!(app.ideas_pane.pending, None);
    assert_eq!(app.ideas_pane.queue.len(), 3, "nothing moved");
    assert_eq!(
        explain(&ApiError::Forbidden {
            detail: "needs an operator token".into()
        }),
        "needs an operator token (403)"
    );
}

#[test]
fn read_only_tokens_see_ideas_but_cannot_act_or_read_the_queue() {
    let mut app = testing::app_as(Role::Viewer);
    let fx = key(&mut app, KeyCode::Char('3'));
    assert_eq!(
        fx.commands,
        vec![Command::Ideas(Some(IdeasFocus {
            queue: false,
            selected: None
        }))]
    );
    app.update(Event::Api(ApiEvent::Ideas(Ok(testing::idea_latest()))));
    assert_eq!(key(&mut app, KeyCode::Char('a')).commands, Vec::new());
    assert_eq!(notice(&app), "read-only: a viewer token cannot approve an idea");
    assert_eq!(key(&mut app, KeyCode::Char('x')).commands, Vec::new());
    assert_eq!(app.mode, Mode::Normal);
}

#[test]
fn failures_keep_the_data_and_a_missing_route_brings_back_the_not_available_frame() {
    let mut app = testing::ideas_app();
    let gone = ApiError::Unreachable {
        url: "http://127.0.0.1:8080".into(),
        reason: "Connection refused (os error 111)".into(),
    };
    app.update(Event::Api(ApiEvent::Ideas(Err(gone.clone()))));
    assert_eq!(app.ideas_pane.error, Some(gone));
    assert_eq!(app.ideas_pane.latest.len(), 5, "the last answer stays on screen");
    assert_eq!(app.ideas, Availability::Present);

    app.update(Event::Api(ApiEvent::Ideas(Err(ApiError::NotFound {
        detail: "no route".into(),
    }))));
    assert_eq!(app.ideas, Availability::Missing);
    assert_eq!(key(&mut app, KeyCode::Char('a')).commands, Vec::new());
    assert_eq!(
        notice(&app),
        "cannot approve an idea: not available on this control plane yet"
    );
}

#[test]
fn idea_events_refetch_only_while_the_view_is_open() {
    let changed = || {
        Event::Api(ApiEvent::Stream(crate::event::StreamEvent::IdeaChanged {
            idea_id: idea_id(4),
            tracking_code: "ZEP-2026-0011".into(),
        }))
    };
    let mut app = testing::ideas_app();
    let fx = app.update(changed());
    assert_eq!(
        fx.commands,
        vec![focus(Some(1))],
        "the same focus again: fetch everything"
    );
    assert!(!fx.redraw, "nothing on screen changed yet");
    key(&mut app, KeyCode::Esc);
    assert_eq!(app.update(changed()), Effects::none());
}
