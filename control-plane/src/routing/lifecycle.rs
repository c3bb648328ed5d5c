//! An idea's lifecycle as pure transitions on its record: what organisations and moderators
//! may do in which state, what a passed deadline does, and the event row each step leaves.
//!
//! Routing itself (choosing organisations) is [`super::rules`]; these functions only say when
//! an idea needs it.

use chrono::{DateTime, TimeDelta, Utc};
use protocol::IdeaState;

use super::records::{IdeaEvent, IdeaRecord};
use super::rules::{Decision, Route};

/// What someone does to an idea through the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdeaAction {
    /// An organisation takes an idea offered to it.
    Confirm,
    /// An organisation turns down an idea offered to it (needs a reason); it is routed again
    /// without that organisation.
    Decline,
    /// The confirming organisation reports progress (`in_action`).
    Progress,
    /// The confirming organisation reports the action done.
    Complete,
    /// A moderator releases a held idea to routing.
    Approve,
    /// A moderator rejects an idea (needs a reason).
    Reject,
    /// A coordinator offers an idea to an organisation of their choice.
    Assign(String),
}

impl IdeaAction {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Confirm => "confirmed",
            Self::Decline => "declined",
            Self::Progress => "progress",
            Self::Complete => "completed",
            Self::Approve => "approved",
            Self::Reject => "rejected",
            Self::Assign(_) => "assigned",
        }
    }
}

/// Who acts: a token subject and, for a `cso` token, its organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub subject: String,
    pub org: Option<String>,
}

/// Notes left with an action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes {
    /// Shown on the public status page.
    pub public: Option<String>,
    /// For operators and the organisation.
    pub internal: Option<String>,
    /// Why (declines and rejections).
    pub reason: Option<String>,
}

/// Why an action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// The idea is not the caller organisation's to act on (shown as "not found", so an
    /// organisation learns nothing about others' ideas).
    #[error("no idea {0:?} for this organisation")]
    NotYours(String),
    #[error("cannot {action} an idea that is {state}")]
    WrongState { action: &'static str, state: IdeaState },
    #[error("{0} needs a reason")]
    ReasonRequired(&'static str),
}

/// What a step leaves behind: event rows, and whether the idea must now be routed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Step {
    pub events: Vec<IdeaEvent>,
    pub needs_routing: bool,
}

/// An event row for `idea` entering its current state.
pub fn event(
    idea: &IdeaRecord,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    from: Option<IdeaState>,
    org: Option<&str>,
    notes: &Notes,
) -> IdeaEvent {
    let internal = match (&notes.reason, &notes.internal) {
        (Some(r), Some(i)) => Some(format!("{r} — {i}")),
        (r, i) => r.clone().or_else(|| i.clone()),
    };
    IdeaEvent {
        id: 0,
        idea_id: idea.id.clone(),
        at,
        actor: actor.to_owned(),
        action: action.to_owned(),
        from_state: from,
        to_state: idea.state,
        org_id: org.map(str::to_owned),
        public_note: notes.public.clone(),
        internal_note: internal,
    }
}

/// `now` plus `d` seconds; no deadline when that is past what a time can hold (rule sets are
/// validated far below it, but a stored idea keeps the SLA it was routed with).
fn after(now: DateTime<Utc>, d: Option<i64>) -> Option<DateTime<Utc>> {
    d.and_then(TimeDelta::try_seconds)
        .and_then(|d| now.checked_add_signed(d))
}

fn secs(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

/// Carries out an action, or says why it may not be done. The record is changed only on
/// success.
pub fn act(
    idea: &mut IdeaRecord,
    action: &IdeaAction,
    actor: &Actor,
    notes: &Notes,
    now: DateTime<Utc>,
) -> Result<Step, LifecycleError> {
    let from = idea.state;
    let wrong = || LifecycleError::WrongState {
        action: match action {
            IdeaAction::Confirm => "confirm",
            IdeaAction::Decline => "decline",
            IdeaAction::Progress => "report progress on",
            IdeaAction::Complete => "complete",
            IdeaAction::Approve => "approve",
            IdeaAction::Reject => "reject",
            IdeaAction::Assign(_) => "assign",
        },
        state: from,
    };
    let org = actor.org.as_deref();
    let offered_to_me = org.is_some_and(|o| idea.offered_to.iter().any(|x| x == o));
    let mine = org.is_some() && idea.org_id.as_deref() == org;
    let mut next = idea.clone();
    let mut needs_routing = false;
    match action {
        IdeaAction::Confirm | IdeaAction::Decline => {
            if !offered_to_me {
                return Err(if mine {
                    wrong()
                } else {
                    LifecycleError::NotYours(idea.id.clone())
                });
            }
            if from != IdeaState::Offered {
                return Err(wrong());
            }
            let org = org.unwrap_or_default().to_owned();
            if *action == IdeaAction::Confirm {
                next.state = IdeaState::Confirmed;
                next.offered_to.clear();
                next.org_id = Some(org);
                next.confirmed_at = Some(now);
                next.deadline = after(now, next.act_within_s);
            } else {
                if notes.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                    return Err(LifecycleError::ReasonRequired("declining"));
                }
                next.offered_to.retain(|o| *o != org);
                next.excluded.push(org);
                needs_routing = next.offered_to.is_empty();
            }
        }
        IdeaAction::Progress | IdeaAction::Complete => {
            if !mine {
                return Err(if offered_to_me {
                    wrong()
                } else {
                    LifecycleError::NotYours(idea.id.clone())
                });
            }
            if !matches!(from, IdeaState::Confirmed | IdeaState::InAction) {
                return Err(wrong());
            }
            if *action == IdeaAction::Progress {
                next.state = IdeaState::InAction;
            } else {
                next.state = IdeaState::Completed;
                next.deadline = None;
                next.completed_at = Some(now);
            }
        }
        IdeaAction::Approve => {
            if from != IdeaState::Held {
                return Err(wrong());
            }
            next.flag = None;
            needs_routing = true;
        }
        IdeaAction::Reject => {
            if !matches!(
                from,
                IdeaState::Received
                    | IdeaState::Held
                    | IdeaState::Offered
                    | IdeaState::Unroutable
                    | IdeaState::Escalated
            ) {
                return Err(wrong());
            }
            if notes.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(LifecycleError::ReasonRequired("rejecting"));
            }
            next.state = IdeaState::Rejected;
            next.offered_to.clear();
            next.deadline = None;
        }
        IdeaAction::Assign(target) => {
            if !matches!(from, IdeaState::Unroutable | IdeaState::Escalated | IdeaState::Offered) {
                return Err(wrong());
            }
            next.state = IdeaState::Offered;
            next.offered_to = vec![target.clone()];
            next.excluded.retain(|o| o != target);
            next.attempts += 1;
            next.deadline = after(now, next.confirm_within_s);
        }
    }
    next.updated_at = now;
    let concerned = match action {
        IdeaAction::Assign(o) => Some(o.as_str()),
        IdeaAction::Confirm | IdeaAction::Decline | IdeaAction::Progress | IdeaAction::Complete => org,
        _ => None,
    };
    let events = vec![event(
        &next,
        now,
        &actor.subject,
        action.as_str(),
        Some(from),
        concerned,
        notes,
    )];
    *idea = next;
    Ok(Step { events, needs_routing })
}

/// Applies a routing decision to an idea that needs routing: offered to the chosen
/// organisations with a fresh confirmation deadline, or `unroutable` (never routed before) /
/// `escalated` (offered before and no one took it, or out of attempts).
pub fn apply_route(
    idea: &mut IdeaRecord,
    decision: &Decision,
    rule_version: i64,
    max_attempts: u32,
    actor: &str,
    now: DateTime<Utc>,
) -> Vec<IdeaEvent> {
    let from = idea.state;
    let routed_before = idea.attempts > 0;
    idea.offered_to.clear();
    idea.updated_at = now;
    let out_of_attempts = i64::from(idea.attempts) >= i64::from(max_attempts);
    match &decision.route {
        Route::Offer {
            organisations,
            rule,
            sla,
            ..
        } if !out_of_attempts => {
            idea.state = IdeaState::Offered;
            idea.offered_to = organisations.clone();
            idea.attempts += 1;
            idea.rule = rule.clone();
            idea.rule_version = Some(rule_version);
            idea.confirm_within_s = Some(secs(sla.confirm_within));
            idea.act_within_s = Some(secs(sla.act_within));
            idea.deadline = after(now, idea.confirm_within_s);
            organisations
                .iter()
                .map(|o| event(idea, now, actor, "offered", Some(from), Some(o), &Notes::default()))
                .collect()
        }
        route => {
            let reason = match route {
                _ if out_of_attempts => format!("no organisation confirmed it in {} offers", idea.attempts),
                Route::Unroutable { reason } => reason.clone(),
                Route::Offer { .. } => String::new(),
            };
            idea.state = if routed_before {
                IdeaState::Escalated
            } else {
                IdeaState::Unroutable
            };
            idea.deadline = None;
            let notes = Notes {
                reason: Some(reason),
                ..Notes::default()
            };
            vec![event(idea, now, actor, idea.state.as_str(), Some(from), None, &notes)]
        }
    }
}

/// What a passed deadline does: an unconfirmed offer expires (the organisations are excluded
/// and the idea needs routing again); a confirmed idea not completed in time is marked overdue,
/// once. The deadline is cleared either way, so it fires once.
pub fn expire(idea: &mut IdeaRecord, now: DateTime<Utc>) -> Option<(&'static str, Step)> {
    if idea.deadline.is_none_or(|d| d > now) {
        return None;
    }
    let from = idea.state;
    idea.deadline = None;
    idea.updated_at = now;
    match from {
        IdeaState::Offered => {
            let expired = std::mem::take(&mut idea.offered_to);
            let events = expired
                .iter()
                .map(|o| {
                    let notes = Notes {
                        internal: Some("not confirmed before the deadline".into()),
                        ..Notes::default()
                    };
                    event(idea, now, "system", "expired", Some(from), Some(o), &notes)
                })
                .collect();
            idea.excluded.extend(expired);
            Some((
                "confirm",
                Step {
                    events,
                    needs_routing: true,
                },
            ))
        }
        IdeaState::Confirmed | IdeaState::InAction => {
            let notes = Notes {
                internal: Some("not completed before the deadline".into()),
                ..Notes::default()
            };
            let events = vec![event(
                idea,
                now,
                "system",
                "act_overdue",
                Some(from),
                idea.org_id.as_deref(),
                &notes,
            )];
            Some((
                "act",
                Step {
                    events,
                    needs_routing: false,
                },
            ))
        }
        _ => Some(("none", Step::default())),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::routing::rules::{Sla, Strategy};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn offered(to: &[&str]) -> IdeaRecord {
        IdeaRecord {
            id: "5f0c6f0e-9a51-4c1e-8d3b-2b7c1a9e4f10".into(),
            tracking_code: "MOS-2026-0001".into(),
            bench_id: "mostar-01".into(),
            municipality: "Mostar".into(),
            submitted_at: t("2026-11-26T09:59:00Z"),
            received_at: t("2026-11-26T10:00:00Z"),
            text: "Više klupa u parku".into(),
            category: "environment".into(),
            lang: "bs".into(),
            contact: None,
            consent: false,
            fingerprint: "f".into(),
            duplicate_of: None,
            state: IdeaState::Offered,
            org_id: None,
            offered_to: to.iter().map(|o| (*o).to_owned()).collect(),
            excluded: vec![],
            attempts: 1,
            rule: Some("r".into()),
            rule_version: Some(1),
            confirm_within_s: Some(3600),
            act_within_s: Some(86_400),
            deadline: Some(t("2026-11-26T11:00:00Z")),
            flag: None,
            updated_at: t("2026-11-26T10:00:00Z"),
            confirmed_at: None,
            completed_at: None,
        }
    }

    fn cso(org: &str) -> Actor {
        Actor {
            subject: format!("member@{org}"),
            org: Some(org.into()),
        }
    }

    fn operator() -> Actor {
        Actor {
            subject: "ops".into(),
            org: None,
        }
    }

    fn reason(r: &str) -> Notes {
        Notes {
            reason: Some(r.into()),
            ..Notes::default()
        }
    }

    #[test]
    fn an_organisation_confirms_acts_and_completes() {
        let now = t("2026-11-26T10:30:00Z");
        let mut idea = offered(&["a", "b"]);
        let step = act(&mut idea, &IdeaAction::Confirm, &cso("b"), &Notes::default(), now).unwrap();
        assert_eq!((idea.state, idea.org_id.as_deref()), (IdeaState::Confirmed, Some("b")));
        assert!(idea.offered_to.is_empty());
        assert_eq!(idea.deadline, Some(now + TimeDelta::days(1)));
        assert_eq!(idea.confirmed_at, Some(now));
        assert!(!step.needs_routing);
        let e = &step.events[0];
        assert_eq!(
            (
                e.action.as_str(),
                e.from_state,
                e.to_state,
                e.org_id.as_deref(),
                e.actor.as_str()
            ),
            (
                "confirmed",
                Some(IdeaState::Offered),
                IdeaState::Confirmed,
                Some("b"),
                "member@b"
            )
        );
        // The other organisation of the fan-out no longer has it.
        let err = act(&mut idea, &IdeaAction::Progress, &cso("a"), &Notes::default(), now).unwrap_err();
        assert_eq!(err, LifecycleError::NotYours(idea.id.clone()));
        let notes = Notes {
            public: Some("Kante naručene".into()),
            ..Notes::default()
        };
        act(&mut idea, &IdeaAction::Progress, &cso("b"), &notes, now).unwrap();
        let step = act(&mut idea, &IdeaAction::Progress, &cso("b"), &Notes::default(), now).unwrap();
        assert_eq!(step.events[0].from_state, Some(IdeaState::InAction));
        act(&mut idea, &IdeaAction::Complete, &cso("b"), &Notes::default(), now).unwrap();
        assert_eq!(
            (idea.state, idea.deadline, idea.completed_at),
            (IdeaState::Completed, None, Some(now))
        );
        let err = act(&mut idea, &IdeaAction::Complete, &cso("b"), &Notes::default(), now).unwrap_err();
        assert_eq!(
            err,
            LifecycleError::WrongState {
                action: "complete",
                state: IdeaState::Completed
            }
        );
    }

    #[test]
    fn organisations_act_only_on_their_own_ideas() {
        let now = t("2026-11-26T10:30:00Z");
        let mut idea = offered(&["a"]);
        let before = idea.clone();
        for action in [
            IdeaAction::Confirm,
            IdeaAction::Decline,
            IdeaAction::Progress,
            IdeaAction::Complete,
        ] {
            let err = act(&mut idea, &action, &cso("b"), &reason("no"), now).unwrap_err();
            assert_eq!(err, LifecycleError::NotYours(idea.id.clone()), "{action:?}");
        }
        // Offered but not yet confirmed: progress is the wrong state, not someone else's idea.
        let err = act(&mut idea, &IdeaAction::Progress, &cso("a"), &Notes::default(), now).unwrap_err();
        assert!(matches!(
            err,
            LifecycleError::WrongState {
                state: IdeaState::Offered,
                ..
            }
        ));
        assert_eq!(idea, before, "refused actions change nothing");
    }

    #[test]
    fn declines_need_a_reason_and_leave_other_offers() {
        let now = t("2026-11-26T10:30:00Z");
        let mut idea = offered(&["a", "b"]);
        let err = act(&mut idea, &IdeaAction::Decline, &cso("a"), &Notes::default(), now).unwrap_err();
        assert_eq!(err, LifecycleError::ReasonRequired("declining"));
        let step = act(
            &mut idea,
            &IdeaAction::Decline,
            &cso("a"),
            &reason("not our field"),
            now,
        )
        .unwrap();
        assert_eq!(
            (idea.offered_to.clone(), idea.excluded.clone()),
            (vec!["b".to_owned()], vec!["a".to_owned()])
        );
        assert!(!step.needs_routing);
        assert_eq!(step.events[0].internal_note.as_deref(), Some("not our field"));
        let step = act(&mut idea, &IdeaAction::Decline, &cso("b"), &reason("busy"), now).unwrap();
        assert!(step.needs_routing);
        assert_eq!(idea.excluded, ["a", "b"]);
    }

    #[test]
    fn moderators_approve_reject_and_assign() {
        let now = t("2026-11-26T10:30:00Z");
        let mut held = IdeaRecord {
            state: IdeaState::Held,
            offered_to: vec![],
            flag: Some("blocklisted: x".into()),
            ..offered(&[])
        };
        let step = act(&mut held, &IdeaAction::Approve, &operator(), &Notes::default(), now).unwrap();
        assert!(step.needs_routing);
        assert_eq!(held.flag, None);
        // The record stays `held` until the service routes it.
        assert_eq!(held.state, IdeaState::Held);
        let mut idea = offered(&["a"]);
        assert!(matches!(
            act(&mut idea, &IdeaAction::Approve, &operator(), &Notes::default(), now),
            Err(LifecycleError::WrongState { .. })
        ));
        assert_eq!(
            act(&mut idea, &IdeaAction::Reject, &operator(), &Notes::default(), now),
            Err(LifecycleError::ReasonRequired("rejecting"))
        );
        let mut escalated = IdeaRecord {
            state: IdeaState::Escalated,
            offered_to: vec![],
            excluded: vec!["c".into()],
            deadline: None,
            ..offered(&[])
        };
        act(
            &mut escalated,
            &IdeaAction::Assign("c".into()),
            &operator(),
            &Notes::default(),
            now,
        )
        .unwrap();
        assert_eq!(escalated.state, IdeaState::Offered);
        assert_eq!(
            (escalated.offered_to.clone(), escalated.excluded.clone()),
            (vec!["c".to_owned()], vec![])
        );
        assert_eq!(
            (escalated.attempts, escalated.deadline),
            (2, Some(now + TimeDelta::hours(1)))
        );
        act(&mut escalated, &IdeaAction::Confirm, &cso("c"), &Notes::default(), now).unwrap();
        assert!(matches!(
            act(&mut escalated, &IdeaAction::Reject, &operator(), &reason("spam"), now),
            Err(LifecycleError::WrongState {
                state: IdeaState::Confirmed,
                ..
            })
        ));
    }

    #[test]
    fn deadlines_fire_once() {
        let mut idea = offered(&["a", "b"]);
        assert_eq!(expire(&mut idea, t("2026-11-26T10:59:59Z")), None);
        let (kind, step) = expire(&mut idea, t("2026-11-26T11:00:00Z")).unwrap();
        assert_eq!(kind, "confirm");
        assert!(step.needs_routing);
        assert_eq!(step.events.len(), 2);
        assert_eq!(
            (idea.excluded.clone(), idea.deadline),
            (vec!["a".to_owned(), "b".to_owned()], None)
        );
        assert_eq!(expire(&mut idea, t("2026-11-27T00:00:00Z")), None);
        let mut confirmed = IdeaRecord {
            state: IdeaState::Confirmed,
            offered_to: vec![],
            org_id: Some("a".into()),
            ..offered(&[])
        };
        let (kind, step) = expire(&mut confirmed, t("2026-11-26T12:00:00Z")).unwrap();
        assert_eq!(
            (kind, step.events[0].action.as_str(), confirmed.state),
            ("act", "act_overdue", IdeaState::Confirmed)
        );
        assert_eq!(expire(&mut confirmed, t("2026-11-28T12:00:00Z")), None);
    }

    /// Found by the `rules` fuzz target: an SLA of 10^11 years fits a `Duration` and an `i64` of
    /// seconds but no `TimeDelta`; offering and confirming by it panicked.
    #[test]
    fn a_deadline_past_any_time_is_none_not_a_panic() {
        let now = t("2026-11-26T12:00:00Z");
        let huge = std::time::Duration::from_secs(100_000_000_000 * 31_557_600);
        let decision = Decision {
            route: Route::Offer {
                organisations: vec!["c".into()],
                rule: Some("r".into()),
                strategy: Strategy::All,
                sla: Sla {
                    confirm_within: huge,
                    act_within: huge,
                },
            },
            rules: vec![],
            fallback: None,
            cursor: None,
        };
        let mut idea = IdeaRecord {
            attempts: 0,
            state: IdeaState::Received,
            ..offered(&[])
        };
        apply_route(&mut idea, &decision, 1, 3, "system", now);
        assert_eq!((idea.state, idea.deadline), (IdeaState::Offered, None));
        let member = Actor {
            subject: "m".into(),
            org: Some("c".into()),
        };
        act(&mut idea, &IdeaAction::Confirm, &member, &Notes::default(), now).unwrap();
        assert_eq!((idea.state, idea.deadline), (IdeaState::Confirmed, None));
    }

    #[test]
    fn routing_offers_or_escalates() {
        let now = t("2026-11-26T12:00:00Z");
        let offer = |orgs: &[&str]| Decision {
            route: Route::Offer {
                organisations: orgs.iter().map(|o| (*o).to_owned()).collect(),
                rule: Some("r2".into()),
                strategy: Strategy::All,
                sla: Sla {
                    confirm_within: std::time::Duration::from_secs(7200),
                    act_within: std::time::Duration::from_secs(3600),
                },
            },
            rules: vec![],
            fallback: None,
            cursor: None,
        };
        let mut idea = offered(&[]);
        let events = apply_route(&mut idea, &offer(&["c", "d"]), 7, 3, "system", now);
        assert_eq!(idea.state, IdeaState::Offered);
        assert_eq!(
            (idea.attempts, idea.rule_version, idea.deadline),
            (2, Some(7), Some(now + TimeDelta::hours(2)))
        );
        assert_eq!(
            events.iter().map(|e| e.org_id.clone().unwrap()).collect::<Vec<_>>(),
            ["c", "d"]
        );
        // Out of attempts: escalated even though a rule would offer it.
        let mut idea = IdeaRecord {
            attempts: 3,
            ..offered(&[])
        };
        let events = apply_route(&mut idea, &offer(&["c"]), 7, 3, "system", now);
        assert_eq!((idea.state, idea.deadline), (IdeaState::Escalated, None));
        assert_eq!(
            events[0].internal_note.as_deref(),
            Some("no organisation confirmed it in 3 offers")
        );
        // Never routed and nowhere to go: unroutable.
        let mut fresh = IdeaRecord {
            attempts: 0,
            state: IdeaState::Received,
            ..offered(&[])
        };
        let nowhere = Decision {
            route: Route::Unroutable {
                reason: "no rule".into(),
            },
            ..offer(&[])
        };
        apply_route(&mut fresh, &nowhere, 7, 3, "system", now);
        assert_eq!(fresh.state, IdeaState::Unroutable);
    }
}
