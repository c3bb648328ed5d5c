//! The idea-routing story: one scenario, told to every backend, asserting exact values.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use protocol::IdeaState;
use protocol::idea::Contact;
use serde_json::json;

use super::testing;
use super::{Store, StoreError, StoreSettings, connect};
use crate::routing::{
    IdeaCount, IdeaEvent, IdeaFilter, IdeaRecord, Match, OrgState, Organisation, RoutingAudit, RoutingWrite, Rule,
    RuleSet, RuleSetRecord, Sla, Strategy,
};

/// 2026-11-26T08:00:00.123Z plus `n` minutes: whole milliseconds, as stored.
fn minute(n: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-26T08:00:00.123Z")
        .unwrap()
        .with_timezone(&Utc)
        + TimeDelta::minutes(n)
}

/// `t` with digits below the millisecond, which the store cuts off.
fn sent(t: DateTime<Utc>) -> DateTime<Utc> {
    t + TimeDelta::nanoseconds(456_789)
}

fn uuid(n: u32) -> String {
    format!("5f0c6f0e-9a51-4c1e-8d3b-{n:012}")
}

fn org(id: &str) -> Organisation {
    Organisation {
        id: id.into(),
        name: format!("Organisation {id}"),
        municipalities: Vec::new(),
        categories: Vec::new(),
        contact_email: format!("{id}@example.org"),
        contact_phone: None,
        website: None,
        description: None,
        state: OrgState::Active,
        created_at: minute(0),
        updated_at: minute(0),
        decided_by: None,
        note: None,
    }
}

/// An organisation with every field set, values chosen to catch lossy round trips.
fn full_org(id: &str) -> Organisation {
    Organisation {
        name: "Lokalna demokratska agencija \"Mostar\" — ĆČŽŠĐ".into(),
        municipalities: vec!["Mostar".into(), "Čapljina".into(), "Berkovići".into()],
        categories: vec!["environment".into(), "youth".into()],
        contact_phone: Some("+387 36 000 000".into()),
        website: Some("https://lda-mostar.example.org/o nama?x=1&y=\\".into()),
        description: Some("Ради с младима.\nSecond line.".into()),
        state: OrgState::Suspended,
        created_at: minute(-60),
        updated_at: minute(-1),
        decided_by: Some("operator:amina".into()),
        note: Some("missed three deadlines".into()),
        ..org(id)
    }
}

fn rule_set(version: i64, created_by: &str) -> RuleSetRecord {
    RuleSetRecord {
        version,
        rules: RuleSet {
            rules: vec![Rule {
                name: "mostar-environment".into(),
                priority: 10,
                matches: Match {
                    municipalities: vec!["Mostar".into()],
                    benches: vec!["bench-01".into()],
                    categories: vec!["environment".into()],
                    languages: vec!["sr".into()],
                    keywords: vec!["rasvjet".into(), "klupa u parku".into()],
                },
                targets: vec!["org-b".into(), "org-a".into()],
                strategy: Strategy::LeastLoaded,
                sla: Sla {
                    confirm_within: Duration::from_secs(48 * 3600),
                    act_within: Duration::from_secs(30 * 24 * 3600 + 90),
                },
            }],
            defaults: BTreeMap::from([("Mostar".into(), "org-a".into()), ("Čapljina".into(), "org-c".into())]),
            default_sla: Sla::default(),
            max_attempts: 5,
        },
        created_by: created_by.into(),
        created_at: minute(version),
    }
}

/// A plain idea: no contact, no routing, no timers.
fn idea(n: u32, municipality: &str, category: &str, state: IdeaState, received_at: DateTime<Utc>) -> IdeaRecord {
    IdeaRecord {
        id: uuid(n),
        tracking_code: format!("MOS-2026-{n:04}"),
        bench_id: "bench-01".into(),
        municipality: municipality.into(),
        submitted_at: received_at - TimeDelta::seconds(30),
        received_at,
        text: format!("Ideja broj {n}"),
        category: category.into(),
        lang: "bs".into(),
        contact: None,
        consent: false,
        fingerprint: format!("fp-{n}"),
        duplicate_of: None,
        state,
        org_id: None,
        offered_to: Vec::new(),
        excluded: Vec::new(),
        attempts: 0,
        rule: None,
        rule_version: None,
        confirm_within_s: None,
        act_within_s: None,
        deadline: None,
        flag: None,
        updated_at: received_at,
        confirmed_at: None,
        completed_at: None,
    }
}

fn event(idea_id: &str, at: DateTime<Utc>, action: &str, from: Option<IdeaState>, to: IdeaState) -> IdeaEvent {
    IdeaEvent {
        id: 0,
        idea_id: idea_id.into(),
        at,
        actor: "system".into(),
        action: action.into(),
        from_state: from,
        to_state: to,
        org_id: None,
        public_note: None,
        internal_note: None,
    }
}

fn audit(n: i64, action: &str, subject: &str) -> RoutingAudit {
    RoutingAudit {
        id: 0,
        at: minute(n),
        actor: "operator:amina".into(),
        action: action.into(),
        subject: subject.into(),
        detail: json!({"n": n, "reason": "ok — ćčž", "nested": {"list": [1, 2.5, null, "x"]}}),
    }
}

fn all() -> IdeaFilter {
    IdeaFilter {
        limit: 100,
        ..IdeaFilter::default()
    }
}

/// Narrowing a filter one condition at a time.
trait Narrow {
    fn states(self, states: &[IdeaState]) -> Self;
    fn org(self, org: &str) -> Self;
    fn municipality(self, municipality: &str) -> Self;
    fn category(self, category: &str) -> Self;
    /// Strictly before `idea`'s position, as a page ending with it continues.
    fn before(self, idea: &IdeaRecord) -> Self;
    fn limit(self, limit: u32) -> Self;
}

impl Narrow for IdeaFilter {
    fn states(self, states: &[IdeaState]) -> Self {
        Self {
            states: states.to_vec(),
            ..self
        }
    }
    fn org(self, org: &str) -> Self {
        Self {
            org: Some(org.into()),
            ..self
        }
    }
    fn municipality(self, municipality: &str) -> Self {
        Self {
            municipality: Some(municipality.into()),
            ..self
        }
    }
    fn category(self, category: &str) -> Self {
        Self {
            category: Some(category.into()),
            ..self
        }
    }
    fn before(self, idea: &IdeaRecord) -> Self {
        Self {
            before: Some((idea.received_at, idea.id.clone())),
            ..self
        }
    }
    fn limit(self, limit: u32) -> Self {
        Self { limit, ..self }
    }
}

fn ids(ideas: &[IdeaRecord]) -> Vec<String> {
    ideas.iter().map(|i| i.id.clone()).collect()
}

fn ids_of(ideas: &[&IdeaRecord]) -> Vec<String> {
    ideas.iter().map(|i| i.id.clone()).collect()
}

fn counts(pairs: &[(&str, i64)]) -> Vec<(String, i64)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// Everything routing keeps, to show that a failed write left no trace.
#[derive(Debug, PartialEq)]
struct Snapshot {
    organisations: Vec<Organisation>,
    rule_sets: Vec<RuleSetRecord>,
    cursors: Vec<(String, i64)>,
    ideas: Vec<IdeaRecord>,
    open: Vec<(String, i64)>,
    events: Vec<Vec<IdeaEvent>>,
    audit: Vec<RoutingAudit>,
}

async fn snapshot(store: &dyn Store, idea_ids: &[String]) -> Snapshot {
    let mut events = Vec::new();
    for id in idea_ids {
        events.push(store.idea_events(id).await.unwrap());
    }
    Snapshot {
        organisations: store.organisations().await.unwrap(),
        rule_sets: store.rule_sets(100).await.unwrap(),
        cursors: store.routing_cursors().await.unwrap(),
        ideas: store.ideas(&all()).await.unwrap(),
        open: store.open_idea_counts().await.unwrap(),
        events,
        audit: store.routing_audit(None, 100).await.unwrap(),
    }
}

/// Writes one routing change made by `edit` from an empty one.
async fn write(store: &dyn Store, edit: impl FnOnce(&mut RoutingWrite)) {
    let mut write = RoutingWrite::default();
    edit(&mut write);
    store.routing_write(&write).await.unwrap();
}

async fn routing_story(store: Arc<dyn Store>) {
    let store = &*store;
    store.migrate().await.unwrap();
    store.migrate().await.expect("migrating twice is a no-op");

    // An empty store.
    assert_eq!(store.organisations().await.unwrap(), []);
    assert_eq!(store.rule_sets(10).await.unwrap(), []);
    assert_eq!(store.routing_cursors().await.unwrap(), []);
    assert_eq!(store.idea(&uuid(1)).await.unwrap(), None);
    assert_eq!(store.idea_by_code("MOS-2026-0001").await.unwrap(), None);
    assert_eq!(store.ideas(&all()).await.unwrap(), []);
    assert_eq!(store.idea_by_fingerprint("fp-1").await.unwrap(), None);
    assert_eq!(store.ideas_due(minute(10_000), 10).await.unwrap(), []);
    assert_eq!(store.open_idea_counts().await.unwrap(), []);
    assert_eq!(store.idea_events(&uuid(1)).await.unwrap(), []);
    assert_eq!(store.idea_counts(minute(-10_000), minute(10_000)).await.unwrap(), []);
    assert_eq!(store.confirm_times(minute(-10_000), minute(10_000)).await.unwrap(), []);
    assert_eq!(store.routing_audit(None, 10).await.unwrap(), []);
    write(store, |_| {}).await;

    // Tracking numbers count per prefix, each prefix on its own, and never repeat when asked
    // for concurrently.
    for expected in 1..=3 {
        assert_eq!(store.next_tracking_number("MOS-2026").await.unwrap(), expected);
    }
    assert_eq!(store.next_tracking_number("TRE-2026").await.unwrap(), 1);
    assert_eq!(store.next_tracking_number("MOS-2027").await.unwrap(), 1);
    assert_eq!(store.next_tracking_number("MOS-2026").await.unwrap(), 4);
    assert_eq!(store.next_tracking_number("TRE-2026").await.unwrap(), 2);
    let mut concurrent = futures::future::try_join_all((0..20).map(|_| store.next_tracking_number("CON-2026")))
        .await
        .unwrap();
    concurrent.sort_unstable();
    assert_eq!(concurrent, (1..=20).collect::<Vec<i64>>());

    // Organisations: every field round-trips (times to the millisecond), listed by id, upserted.
    let org_b_sent = Organisation {
        created_at: sent(minute(-60)),
        updated_at: sent(minute(-1)),
        ..full_org("org-b")
    };
    write(store, |w| {
        w.organisations = vec![org_b_sent, org("org-a"), org("org-c")]
    })
    .await;
    assert_eq!(
        store.organisations().await.unwrap(),
        [org("org-a"), full_org("org-b"), org("org-c")]
    );
    let org_b = Organisation {
        state: OrgState::Active,
        note: None,
        contact_phone: None,
        municipalities: vec!["Trebinje".into()],
        ..full_org("org-b")
    };
    write(store, |w| w.organisations = vec![org_b.clone()]).await;
    assert_eq!(
        store.organisations().await.unwrap(),
        [org("org-a"), org_b.clone(), org("org-c")]
    );

    // Rule sets: newest first, at most `limit`, the rules exactly as written.
    let v1 = rule_set(1, "operator:amina");
    let v2 = RuleSetRecord {
        rules: RuleSet::default(),
        ..rule_set(2, "operator:dario")
    };
    write(store, |w| {
        w.rule_set = Some(RuleSetRecord {
            created_at: sent(v1.created_at),
            ..v1.clone()
        })
    })
    .await;
    write(store, |w| w.rule_set = Some(v2.clone())).await;
    assert_eq!(store.rule_sets(10).await.unwrap(), [v2.clone(), v1.clone()]);
    assert_eq!(store.rule_sets(1).await.unwrap(), std::slice::from_ref(&v2));
    assert_eq!(store.rule_sets(0).await.unwrap(), []);

    // Cursors: set, listed by key, overwritten.
    write(store, |w| w.cursors = vec![("rule-b".into(), 3), ("rule-a".into(), 1)]).await;
    assert_eq!(
        store.routing_cursors().await.unwrap(),
        counts(&[("rule-a", 1), ("rule-b", 3)])
    );
    write(store, |w| w.cursors = vec![("rule-a".into(), 2)]).await;
    assert_eq!(
        store.routing_cursors().await.unwrap(),
        counts(&[("rule-a", 2), ("rule-b", 3)])
    );

    // An idea with every field set round-trips, times cut to the millisecond.
    let a_full = IdeaRecord {
        submitted_at: minute(9),
        text: "Потребна је расвјета у парку; \"quotes\" \\ and 'apostrophes'".into(),
        lang: "sr-Cyrl".into(),
        contact: Some(Contact {
            email: Some("građanin@example.ba".into()),
            phone: Some("+387 61 000 000".into()),
            consent: true,
        }),
        consent: true,
        fingerprint: "fp-light".into(),
        duplicate_of: Some(uuid(99)),
        org_id: Some("org-z".into()),
        offered_to: vec!["org-b".into(), "org-a".into()],
        excluded: vec!["org-x".into(), "org-y".into()],
        attempts: i32::MAX,
        rule: Some("mostar-environment".into()),
        rule_version: Some(i64::MAX),
        confirm_within_s: Some(172_800),
        act_within_s: Some(2_592_000),
        deadline: Some(minute(100)),
        flag: Some("blocklist: \"word\"".into()),
        updated_at: minute(11),
        confirmed_at: Some(minute(12)),
        completed_at: Some(minute(13)),
        ..idea(1, "Mostar", "environment", IdeaState::Offered, minute(10))
    };
    let a_full_sent = IdeaRecord {
        submitted_at: sent(a_full.submitted_at),
        received_at: sent(a_full.received_at),
        deadline: a_full.deadline.map(sent),
        updated_at: sent(a_full.updated_at),
        confirmed_at: a_full.confirmed_at.map(sent),
        completed_at: a_full.completed_at.map(sent),
        ..a_full.clone()
    };
    write(store, |w| w.ideas = vec![a_full_sent]).await;
    assert_eq!(store.idea(&uuid(1)).await.unwrap(), Some(a_full.clone()));
    assert_eq!(store.idea_by_code("MOS-2026-0001").await.unwrap(), Some(a_full.clone()));
    assert_eq!(store.idea_by_code("MOS-2026-0099").await.unwrap(), None);

    // Written again with fields cleared: an upsert replaces every field, offers in their order.
    let a = IdeaRecord {
        contact: Some(Contact {
            email: None,
            phone: Some("061 000 000".into()),
            consent: false,
        }),
        consent: false,
        duplicate_of: None,
        org_id: None,
        excluded: Vec::new(),
        attempts: 1,
        rule_version: Some(2),
        flag: None,
        confirmed_at: None,
        completed_at: None,
        ..a_full.clone()
    };
    let b = IdeaRecord {
        org_id: Some("org-a".into()),
        confirmed_at: Some(minute(20) + TimeDelta::seconds(90)),
        deadline: Some(minute(50)),
        ..idea(2, "Mostar", "infrastructure", IdeaState::Confirmed, minute(20))
    };
    let c = IdeaRecord {
        org_id: Some("org-b".into()),
        confirmed_at: Some(minute(30) + TimeDelta::hours(1)),
        deadline: Some(minute(200)),
        ..idea(3, "Trebinje", "environment", IdeaState::InAction, minute(30))
    };
    let d = IdeaRecord {
        org_id: Some("org-a".into()),
        confirmed_at: Some(minute(40) + TimeDelta::seconds(5)),
        completed_at: Some(minute(400)),
        ..idea(4, "Mostar", "environment", IdeaState::Completed, minute(40))
    };
    // Received in the same millisecond as `d`: ordered by id.
    let e = IdeaRecord {
        flag: Some("held for moderation".into()),
        ..idea(5, "Trebinje", "youth", IdeaState::Held, minute(40))
    };
    // Earlier ideas with `a`'s text that do not count as its original: rejected, duplicate.
    let f = IdeaRecord {
        fingerprint: "fp-light".into(),
        ..idea(6, "Mostar", "environment", IdeaState::Rejected, minute(5))
    };
    let g = IdeaRecord {
        fingerprint: "fp-light".into(),
        duplicate_of: Some(uuid(1)),
        ..idea(7, "Mostar", "environment", IdeaState::Duplicate, minute(8))
    };
    // Escalated with a stale offer and a confirmation time but no organisation: neither counts.
    let h = IdeaRecord {
        offered_to: vec!["org-c".into()],
        confirmed_at: Some(minute(51)),
        ..idea(8, "Mostar", "culture", IdeaState::Escalated, minute(50))
    };
    // A later idea with `a`'s text.
    let i = IdeaRecord {
        fingerprint: "fp-light".into(),
        ..idea(9, "Mostar", "environment", IdeaState::Received, minute(60))
    };
    let e1 = IdeaEvent {
        actor: "bench:bench-01".into(),
        public_note: Some("Primljeno".into()),
        ..event(&uuid(1), sent(minute(10)), "received", None, IdeaState::Received)
    };
    let e2 = IdeaEvent {
        org_id: Some("org-b".into()),
        public_note: Some("Proslijeđeno".into()),
        internal_note: Some("rule mostar-environment, least loaded".into()),
        ..event(
            &uuid(1),
            minute(10),
            "offered",
            Some(IdeaState::Received),
            IdeaState::Offered,
        )
    };
    let e_b = event(&uuid(2), minute(20), "received", None, IdeaState::Received);
    let stored_ideas = [&a, &b, &c, &d, &e, &f, &g, &h, &i];
    write(store, |w| {
        w.ideas = stored_ideas.map(|x| x.clone()).to_vec();
        w.events = vec![e1.clone(), e_b.clone(), e2.clone()];
    })
    .await;
    assert_eq!(store.idea(&uuid(1)).await.unwrap(), Some(a.clone()));
    assert_eq!(store.idea(&uuid(2)).await.unwrap(), Some(b.clone()));

    // Events: oldest first, ids assigned by the store and increasing, times in milliseconds.
    let events = store.idea_events(&uuid(1)).await.unwrap();
    let expected = [
        IdeaEvent {
            at: minute(10),
            ..e1.clone()
        },
        e2.clone(),
    ];
    assert_eq!(events.len(), 2);
    assert!(0 < events[0].id && events[0].id < events[1].id, "{events:?}");
    for (got, want) in events.iter().zip(&expected) {
        assert_eq!(IdeaEvent { id: 0, ..got.clone() }, *want);
    }
    let events_b = store.idea_events(&uuid(2)).await.unwrap();
    assert_eq!(events_b.len(), 1);
    assert!(events[0].id < events_b[0].id && events_b[0].id < events[1].id);
    assert_eq!(
        IdeaEvent {
            id: 0,
            ..events_b[0].clone()
        },
        e_b
    );
    assert_eq!(store.idea_events(&uuid(99)).await.unwrap(), []);

    // Listing: newest first, then id descending; every record whole.
    let newest_first = [&i, &h, &e, &d, &c, &b, &a, &g, &f];
    assert_eq!(store.ideas(&all()).await.unwrap(), newest_first.map(|x| x.clone()));
    let list = |filter: IdeaFilter| async move { ids(&store.ideas(&filter).await.unwrap()) };

    // Each condition alone.
    let (offered, confirmed, completed) = (IdeaState::Offered, IdeaState::Confirmed, IdeaState::Completed);
    assert_eq!(list(all().states(&[offered, confirmed])).await, ids_of(&[&b, &a]));
    assert_eq!(
        list(all().org("org-a")).await,
        ids_of(&[&d, &b, &a]),
        "confirmed by org-a (whatever the state), or offered to it"
    );
    assert_eq!(list(all().org("org-b")).await, ids_of(&[&c, &a]));
    assert_eq!(list(all().org("org-c")).await, ids_of(&[&h]));
    assert_eq!(list(all().org("org-z")).await, ids_of(&[]));
    assert_eq!(list(all().municipality("Trebinje")).await, ids_of(&[&e, &c]));
    assert_eq!(
        list(all().category("environment")).await,
        ids_of(&[&i, &d, &c, &a, &g, &f])
    );
    assert_eq!(list(all().before(&b)).await, ids_of(&[&a, &g, &f]));
    // Strictly before d's position: e shares its time but has a higher id.
    assert_eq!(list(all().before(&d)).await, ids_of(&[&c, &b, &a, &g, &f]));
    assert_eq!(list(all().before(&e)).await, ids_of(&[&d, &c, &b, &a, &g, &f]));
    // A time between stored milliseconds: everything received up to it, whatever the id.
    let just_before = (d.received_at - TimeDelta::microseconds(1), "ffff".to_owned());
    let just_after = (d.received_at + TimeDelta::microseconds(1), "0".to_owned());
    assert_eq!(
        list(IdeaFilter {
            before: Some(just_before),
            ..all()
        })
        .await,
        ids_of(&[&c, &b, &a, &g, &f])
    );
    assert_eq!(
        list(IdeaFilter {
            before: Some(just_after),
            ..all()
        })
        .await,
        ids_of(&[&e, &d, &c, &b, &a, &g, &f])
    );
    assert_eq!(list(all().limit(3)).await, ids_of(&[&i, &h, &e]));
    assert_eq!(list(all().limit(0)).await, ids_of(&[]));

    // Combined: every condition must hold.
    let mostar_environment = all().municipality("Mostar").category("environment");
    assert_eq!(list(mostar_environment.clone()).await, ids_of(&[&i, &d, &a, &g, &f]));
    let some_states = mostar_environment.states(&[completed, offered, IdeaState::Rejected]);
    assert_eq!(list(some_states.clone()).await, ids_of(&[&d, &a, &f]));
    assert_eq!(list(some_states.clone().org("org-a")).await, ids_of(&[&d, &a]));
    assert_eq!(list(some_states.clone().before(&d)).await, ids_of(&[&a, &f]));
    assert_eq!(list(some_states.limit(1)).await, ids_of(&[&d]));
    assert_eq!(list(all().states(&[completed]).org("org-b")).await, ids_of(&[]));
    assert_eq!(
        list(all().municipality("Trebinje").category("youth")).await,
        ids_of(&[&e])
    );

    // Paging: each page starts right after the last one, through the tie of d and e.
    let mut pages = Vec::new();
    let mut page_filter = all().limit(3);
    for _ in 0..10 {
        let page = store.ideas(&page_filter).await.unwrap();
        let Some(last) = page.last() else { break };
        page_filter = page_filter.before(last);
        pages.push(ids(&page));
    }
    assert_eq!(
        pages,
        [ids_of(&[&i, &h, &e]), ids_of(&[&d, &c, &b]), ids_of(&[&a, &g, &f])]
    );

    // The original of a text: the earliest that is neither rejected nor a duplicate.
    assert_eq!(store.idea_by_fingerprint("fp-light").await.unwrap(), Some(a.clone()));
    assert_eq!(store.idea_by_fingerprint("fp-8").await.unwrap(), Some(h.clone()));
    assert_eq!(
        store.idea_by_fingerprint("fp-6").await.unwrap(),
        None,
        "f's own is rejected"
    );
    assert_eq!(store.idea_by_fingerprint("fp-unknown").await.unwrap(), None);

    // Timers: deadlines at or before `now`, earliest first, at most `limit`.
    assert_eq!(ids(&store.ideas_due(minute(150), 10).await.unwrap()), ids_of(&[&b, &a]));
    assert_eq!(store.ideas_due(minute(150), 1).await.unwrap(), std::slice::from_ref(&b));
    assert_eq!(store.ideas_due(minute(150), 0).await.unwrap(), []);
    assert_eq!(ids(&store.ideas_due(minute(50), 10).await.unwrap()), ids_of(&[&b]));
    assert_eq!(
        ids(&store
            .ideas_due(minute(50) + TimeDelta::microseconds(999), 10)
            .await
            .unwrap()),
        ids_of(&[&b])
    );
    assert_eq!(
        store
            .ideas_due(minute(50) - TimeDelta::microseconds(1), 10)
            .await
            .unwrap(),
        []
    );
    assert_eq!(
        ids(&store.ideas_due(minute(10_000), 10).await.unwrap()),
        ids_of(&[&b, &a, &c])
    );

    // Load: a's two offers, b and c held by their organisations; not h's stale offer, not d.
    assert_eq!(
        store.open_idea_counts().await.unwrap(),
        counts(&[("org-a", 2), ("org-b", 2)])
    );

    // Offers are replaced, not appended.
    let a_reoffered = IdeaRecord {
        offered_to: vec!["org-c".into()],
        excluded: vec!["org-b".into(), "org-a".into()],
        attempts: 2,
        ..a.clone()
    };
    let e3 = IdeaEvent {
        org_id: Some("org-c".into()),
        ..event(
            &uuid(1),
            minute(70),
            "offered",
            Some(IdeaState::Offered),
            IdeaState::Offered,
        )
    };
    write(store, |w| {
        w.ideas = vec![a_reoffered.clone()];
        w.events = vec![e3.clone()];
    })
    .await;
    assert_eq!(store.idea(&uuid(1)).await.unwrap(), Some(a_reoffered.clone()));
    assert_eq!(
        store.open_idea_counts().await.unwrap(),
        counts(&[("org-a", 1), ("org-b", 1), ("org-c", 1)])
    );
    assert_eq!(list(all().org("org-a")).await, ids_of(&[&d, &b]));
    let events = store.idea_events(&uuid(1)).await.unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(
        IdeaEvent {
            id: 0,
            ..events[2].clone()
        },
        e3
    );
    let a = a_reoffered;

    // Confirmation times per organisation, by time received; none without an organisation.
    assert_eq!(
        store.confirm_times(minute(0), minute(10_000)).await.unwrap(),
        counts(&[("org-a", 90_000), ("org-a", 5_000), ("org-b", 3_600_000)])
    );
    assert_eq!(
        store
            .confirm_times(minute(20) + TimeDelta::microseconds(1), minute(40))
            .await
            .unwrap(),
        counts(&[("org-b", 3_600_000)])
    );

    // Counts per municipality, category and state: names bytewise, states in lifecycle order,
    // `from` inclusive and `to` exclusive.
    let j = idea(10, "Čapljina", "youth", IdeaState::Held, minute(70));
    let k = idea(11, "Čapljina", "youth", IdeaState::Held, minute(71));
    write(store, |w| w.ideas = vec![j.clone(), k.clone()]).await;
    let count = |municipality: &str, category: &str, state: IdeaState, count: i64| IdeaCount {
        municipality: municipality.into(),
        category: category.into(),
        state,
        count,
    };
    assert_eq!(
        store.idea_counts(minute(0), minute(10_000)).await.unwrap(),
        [
            count("Mostar", "culture", IdeaState::Escalated, 1),
            count("Mostar", "environment", IdeaState::Received, 1),
            count("Mostar", "environment", IdeaState::Offered, 1),
            count("Mostar", "environment", IdeaState::Completed, 1),
            count("Mostar", "environment", IdeaState::Rejected, 1),
            count("Mostar", "environment", IdeaState::Duplicate, 1),
            count("Mostar", "infrastructure", IdeaState::Confirmed, 1),
            count("Trebinje", "environment", IdeaState::InAction, 1),
            count("Trebinje", "youth", IdeaState::Held, 1),
            count("Čapljina", "youth", IdeaState::Held, 2),
        ]
    );
    assert_eq!(
        store.idea_counts(minute(10), minute(70)).await.unwrap(),
        [
            count("Mostar", "culture", IdeaState::Escalated, 1),
            count("Mostar", "environment", IdeaState::Received, 1),
            count("Mostar", "environment", IdeaState::Offered, 1),
            count("Mostar", "environment", IdeaState::Completed, 1),
            count("Mostar", "infrastructure", IdeaState::Confirmed, 1),
            count("Trebinje", "environment", IdeaState::InAction, 1),
            count("Trebinje", "youth", IdeaState::Held, 1),
        ]
    );
    assert_eq!(
        store
            .idea_counts(
                minute(70) + TimeDelta::microseconds(1),
                minute(71) + TimeDelta::microseconds(1)
            )
            .await
            .unwrap(),
        [count("Čapljina", "youth", IdeaState::Held, 1)]
    );

    // Audit: newest first, paged by id.
    let audits = [
        audit(1, "organisation.approve", "org-a"),
        audit(2, "organisation.approve", "org-b"),
        audit(3, "organisation.suspend", "org-b"),
        audit(4, "organisation.reject", "org-d"),
        audit(5, "organisation.approve", "org-c"),
    ];
    write(store, |w| w.audit = audits[..3].to_vec()).await;
    write(store, |w| w.audit = audits[3..].to_vec()).await;
    let stored = store.routing_audit(None, 100).await.unwrap();
    assert_eq!(
        stored
            .iter()
            .map(|a| RoutingAudit { id: 0, ..a.clone() })
            .collect::<Vec<_>>(),
        audits.iter().rev().cloned().collect::<Vec<_>>()
    );
    assert!(stored.windows(2).all(|w| w[0].id > w[1].id), "{stored:?}");
    let mut paged = Vec::new();
    let mut before = None;
    for _ in 0..10 {
        let page = store.routing_audit(before, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        paged.push(page);
    }
    assert_eq!(
        paged,
        [stored[..2].to_vec(), stored[2..4].to_vec(), stored[4..].to_vec()]
    );
    assert_eq!(store.routing_audit(Some(stored[1].id), 100).await.unwrap(), stored[2..]);

    // A failed write leaves nothing behind: a reused rule set version…
    let x = IdeaRecord {
        offered_to: vec!["org-a".into()],
        ..idea(20, "Mostar", "youth", IdeaState::Offered, minute(80))
    };
    let y = IdeaRecord {
        tracking_code: a.tracking_code.clone(),
        ..idea(21, "Mostar", "youth", IdeaState::Received, minute(81))
    };
    let all_ids: Vec<String> = (1..=21).map(uuid).collect();
    let before_failures = snapshot(store, &all_ids).await;
    let doomed = |rule_set: RuleSetRecord, ideas: Vec<IdeaRecord>| RoutingWrite {
        organisations: vec![
            org("org-z"),
            Organisation {
                note: Some("changed".into()),
                ..org("org-a")
            },
        ],
        rule_set: Some(rule_set),
        ideas,
        events: vec![event(&uuid(20), minute(80), "received", None, IdeaState::Received)],
        cursors: vec![("rule-a".into(), 99), ("rule-z".into(), 1)],
        audit: vec![audit(6, "organisation.approve", "org-z")],
    };
    let err = store
        .routing_write(&doomed(rule_set(2, "operator:mallory"), vec![x.clone()]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(snapshot(store, &all_ids).await, before_failures);

    // …and a tracking code that is another idea's (after a valid idea in the same write).
    let err = store
        .routing_write(&doomed(rule_set(3, "operator:mallory"), vec![x.clone(), y.clone()]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(snapshot(store, &all_ids).await, before_failures);
    assert_eq!(store.idea(&x.id).await.unwrap(), None);
    assert_eq!(store.idea_by_code(&a.tracking_code).await.unwrap(), Some(a.clone()));

    // Without the conflicts the same write goes through.
    let v3 = rule_set(3, "operator:mallory");
    let done = doomed(v3.clone(), vec![x.clone()]);
    store.routing_write(&done).await.unwrap();
    assert_eq!(store.rule_sets(10).await.unwrap(), [v3, v2, v1]);
    assert_eq!(store.idea(&x.id).await.unwrap(), Some(x.clone()));
    assert_eq!(
        store.routing_cursors().await.unwrap(),
        counts(&[("rule-a", 99), ("rule-b", 3), ("rule-z", 1)])
    );
    assert_eq!(store.organisations().await.unwrap().len(), 4);
    assert_eq!(
        store.open_idea_counts().await.unwrap(),
        counts(&[("org-a", 2), ("org-b", 1), ("org-c", 1)])
    );
    // Moving an idea to a code that another idea has is refused as well.
    let err = store
        .routing_write(&RoutingWrite {
            ideas: vec![IdeaRecord {
                tracking_code: b.tracking_code.clone(),
                ..x.clone()
            }],
            ..RoutingWrite::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.idea(&x.id).await.unwrap(), Some(x));
}

/// What must survive a restart: tracking numbers go on where they stopped.
async fn after_restart(store: Arc<dyn Store>) {
    store.migrate().await.unwrap();
    assert_eq!(store.next_tracking_number("MOS-2026").await.unwrap(), 5);
    assert_eq!(store.next_tracking_number("NEW-2026").await.unwrap(), 1);
    assert_eq!(store.organisations().await.unwrap().len(), 4);
}

#[tokio::test]
async fn routing_story_on_sqlite() {
    let db = testing::sqlite_database();
    let store = connect(db.url(), &StoreSettings::default()).await.unwrap();
    routing_story(store).await;
    after_restart(connect(db.url(), &StoreSettings::default()).await.unwrap()).await;
}

#[tokio::test]
async fn routing_story_on_sqlite_in_memory() {
    let store = connect("sqlite::memory:", &StoreSettings::default()).await.unwrap();
    routing_story(store).await;
}

#[tokio::test]
async fn routing_story_on_postgres() {
    let Some(db) = testing::pg_database().await else {
        return;
    };
    let store = connect(db.url(), &StoreSettings::default()).await.unwrap();
    routing_story(store).await;
    after_restart(connect(db.url(), &StoreSettings::default()).await.unwrap()).await;
}
