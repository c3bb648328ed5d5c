//! The routing service on both store backends, with a hand-driven clock: intake (acks, repeats,
//! duplicates, limits, blocklist, consent), deadlines that re-offer, escalate and fire once
//! across a restart, round-robin positions that survive a restart, declines, organisations'
//! isolation, the public view and the report.

use std::sync::Arc;

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use protocol::idea::{AckStatus, Contact, IdeaAck, IdeaSubmission, PublicState};
use protocol::{BenchId, Fleet, IdeaState};

use super::*;
use crate::api::testing::Acks;
use crate::store::testing::{Outage, PgDatabase, SqliteDatabase, pg_database, sqlite_database};
use crate::store::{Store, connect};

/// A routing service over a real store, a clock that moves by hand, and recorded acks.
struct Bed {
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    acks: Arc<Acks>,
    metrics: Arc<Metrics>,
    settings: RoutingSettings,
    routing: Routing,
    _db: (Option<SqliteDatabase>, Option<PgDatabase>),
}

impl Bed {
    async fn new(url: &str, db: (Option<SqliteDatabase>, Option<PgDatabase>), settings: RoutingSettings) -> Self {
        let store = connect(url, &Default::default()).await.unwrap();
        store.migrate().await.unwrap();
        let clock = Arc::new(ManualClock::new("2026-11-26T10:00:00Z".parse().unwrap()));
        let acks = Arc::new(Acks::default());
        let metrics = Arc::new(Metrics::new());
        let routing = Self::load(&store, &clock, &acks, &metrics, &settings).await;
        Self {
            store,
            clock,
            acks,
            metrics,
            settings,
            routing,
            _db: db,
        }
    }

    async fn load(
        store: &Arc<dyn Store>,
        clock: &Arc<ManualClock>,
        acks: &Arc<Acks>,
        metrics: &Arc<Metrics>,
        settings: &RoutingSettings,
    ) -> Routing {
        Routing::load(
            Arc::new(Fleet::link4()),
            settings.clone(),
            store.clone(),
            acks.clone(),
            clock.clone(),
            metrics.clone(),
        )
        .await
        .unwrap()
        .0
    }

    /// A new service on the same store, as after a restart.
    async fn restart(&mut self) {
        self.routing = Self::load(&self.store, &self.clock, &self.acks, &self.metrics, &self.settings).await;
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Active organisations with these ids (written straight to the store; applying and
    /// approving are tested over HTTP), then a restart to load them.
    async fn organisations(&mut self, ids: &[&str]) {
        let now = self.now();
        let organisations = ids
            .iter()
            .map(|id| Organisation {
                id: (*id).to_owned(),
                name: (*id).to_owned(),
                municipalities: vec!["Mostar".into()],
                categories: vec![],
                contact_email: format!("info@{id}.ba"),
                contact_phone: None,
                website: None,
                description: None,
                state: OrgState::Active,
                created_at: now,
                updated_at: now,
                decided_by: Some("ops".into()),
                note: None,
            })
            .collect();
        let write = RoutingWrite {
            organisations,
            ..RoutingWrite::default()
        };
        self.store.routing_write(&write).await.unwrap();
        self.restart().await;
    }

    async fn rules(&self, json: &str) {
        let rules: RuleSet = serde_json::from_str(json).unwrap();
        self.routing.set_rules("ops", rules).await.unwrap();
    }

    async fn submit(&self, bench: &str, idea: &IdeaSubmission) -> Option<IdeaAck> {
        let bench = BenchId::parse(bench).unwrap();
        self.routing.submit(&bench, &idea.to_json(), self.now()).await.unwrap()
    }

    async fn events(&self, id: &str) -> Vec<(String, IdeaState, Option<String>)> {
        self.routing
            .history(id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.action, e.to_state, e.org_id))
            .collect()
    }
}

fn idea(n: u32, text: &str) -> IdeaSubmission {
    IdeaSubmission {
        v: 1,
        idea_id: format!("00000000-0000-4000-8000-{n:012}"),
        ts: "2026-11-26T09:59:00Z".parse().unwrap(),
        text: text.into(),
        category: "environment".into(),
        lang: "bs".into(),
        contact: None,
    }
}

fn ev(action: &str, state: IdeaState, org: Option<&str>) -> (String, IdeaState, Option<String>) {
    (action.to_owned(), state, org.map(str::to_owned))
}

macro_rules! on_both_backends {
    ($scenario:ident) => {
        on_both_backends!($scenario, RoutingSettings::default());
    };
    ($scenario:ident, $settings:expr) => {
        mod $scenario {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let db = sqlite_database();
                let url = db.url().to_owned();
                super::$scenario(Bed::new(&url, (Some(db), None), $settings).await).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(db) = pg_database().await else {
                    return;
                };
                let url = db.url().to_owned();
                super::$scenario(Bed::new(&url, (None, Some(db)), $settings).await).await;
            }
        }
    };
}

on_both_backends!(
    intake,
    RoutingSettings {
        bench_burst: 4,
        blocklist: vec!["uvred".into()],
        ..RoutingSettings::default()
    }
);
async fn intake(mut bed: Bed) {
    bed.organisations(&["a"]).await;
    bed.rules(r#"{"rules":[{"name":"env","priority":1,"match":{"categories":["environment"]},"targets":["a"]}]}"#)
        .await;
    let first = idea(1, "Više kanti za smeće u parku, molim!");
    let ack = bed.submit("mostar-01", &first).await.unwrap();
    assert_eq!(
        ack,
        IdeaAck {
            v: 1,
            idea_id: first.idea_id.clone(),
            tracking_code: Some("MOS-2026-0001".into()),
            status: AckStatus::Received,
            reason: None,
            retry_after_s: None,
        }
    );
    let stored = bed.routing.idea(&first.idea_id).await.unwrap();
    assert_eq!(
        (stored.state, stored.offered_to.clone()),
        (IdeaState::Offered, vec!["a".to_owned()])
    );
    assert_eq!(
        (stored.municipality.as_str(), stored.rule.as_deref(), stored.attempts),
        ("Mostar", Some("env"), 1)
    );
    assert_eq!(stored.deadline, Some(bed.now() + TimeDelta::hours(72)));

    // The kiosk did not get the ack and sends the same idea again: same code, nothing new.
    assert_eq!(bed.submit("mostar-01", &first).await.unwrap(), ack);
    let all = bed
        .routing
        .ideas(&IdeaFilter {
            limit: 100,
            ..IdeaFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        bed.events(&first.idea_id).await,
        [
            ev("received", IdeaState::Received, None),
            ev("offered", IdeaState::Offered, Some("a"))
        ]
    );
    // Another bench cannot reuse the id.
    let stolen = bed.submit("zepce-01", &first).await.unwrap();
    assert_eq!((stolen.status, stolen.tracking_code), (AckStatus::Invalid, None));

    // The same idea in another script, case and spacing: a duplicate with its own code.
    let again = idea(2, "ВИШЕ  кanti za smeće u parku molim");
    let ack = bed.submit("mostar-01", &again).await.unwrap();
    assert_eq!(
        (ack.status, ack.tracking_code.as_deref()),
        (AckStatus::Duplicate, Some("MOS-2026-0002"))
    );
    let dup = bed.routing.idea(&again.idea_id).await.unwrap();
    assert_eq!(
        (dup.state, dup.duplicate_of.as_deref()),
        (IdeaState::Duplicate, Some(first.idea_id.as_str()))
    );
    let public = bed.routing.public("MOS-2026-0002").await.unwrap();
    assert_eq!(
        (public.state, public.duplicate_of.as_deref()),
        (PublicState::Duplicate, Some("MOS-2026-0001"))
    );

    // Blocklisted words in any script hold the idea for moderation.
    let rude = idea(3, "Ovo je УВРЕДА za sve nas");
    assert_eq!(
        bed.submit("zepce-01", &rude).await.unwrap().tracking_code.as_deref(),
        Some("ZEP-2026-0001")
    );
    let held = bed.routing.idea(&rude.idea_id).await.unwrap();
    assert_eq!(
        (held.state, held.flag.as_deref()),
        (IdeaState::Held, Some("blocklisted: uvred"))
    );

    // Too short, malformed with a usable id, and garbage.
    let short = bed.submit("mostar-01", &idea(4, "kante")).await.unwrap();
    assert_eq!(short.status, AckStatus::Invalid);
    assert_eq!(
        short.reason.as_deref(),
        Some("text must have 10-2000 characters, not 5")
    );
    let bench = BenchId::parse("mostar-01").unwrap();
    let bad = format!(r#"{{"v":1,"idea_id":"{}","text":7}}"#, idea(5, "").idea_id);
    let ack = bed
        .routing
        .submit(&bench, bad.as_bytes(), bed.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ack.status, AckStatus::Invalid);
    assert_eq!(bed.routing.submit(&bench, b"{not json", bed.now()).await.unwrap(), None);

    // Contact details are kept only with consent.
    let mut with = idea(6, "Treba nam nova česma kod škole");
    with.contact = Some(Contact {
        email: Some("amra@mail.ba".into()),
        phone: None,
        consent: true,
    });
    bed.submit("maglaj-01", &with).await.unwrap();
    let mut without = idea(7, "Treba nam nova klupa kod škole");
    without.contact = Some(Contact {
        email: Some("amra@mail.ba".into()),
        phone: None,
        consent: false,
    });
    bed.submit("maglaj-01", &without).await.unwrap();
    let kept = bed.routing.idea(&with.idea_id).await.unwrap();
    assert_eq!((kept.consent, kept.contact), (true, with.contact.clone()));
    let dropped = bed.routing.idea(&without.idea_id).await.unwrap();
    assert_eq!((dropped.consent, dropped.contact), (false, None));

    // The burst of 4 per bench is spent at mostar-01 (two stored ideas, the rest refused
    // before counting): the next new idea is refused until a token comes back (30 per hour).
    let third = bed
        .submit("mostar-01", &idea(8, "Nova biciklistička staza uz rijeku"))
        .await
        .unwrap();
    assert_eq!(third.status, AckStatus::Received);
    let fourth = bed
        .submit("mostar-01", &idea(9, "Nova biciklistička staza uz jezero"))
        .await
        .unwrap();
    assert_eq!(fourth.status, AckStatus::Received);
    let limited = bed
        .submit("mostar-01", &idea(10, "Nova biciklistička staza uz more"))
        .await
        .unwrap();
    assert_eq!((limited.status, limited.tracking_code), (AckStatus::RateLimited, None));
    assert_eq!(
        limited.reason.as_deref(),
        Some("too many ideas from this bench; send again in 120 s")
    );
    assert!(bed.routing.idea(&idea(10, "").idea_id).await.is_err(), "nothing stored");
    bed.clock.advance(TimeDelta::seconds(120));
    let later = bed
        .submit("mostar-01", &idea(10, "Nova biciklistička staza uz more"))
        .await
        .unwrap();
    assert_eq!(later.tracking_code.as_deref(), Some("MOS-2026-0005"));

    let count = |status| bed.metrics.ideas_submitted.get_or_create(&StatusLabel { status }).get();
    assert_eq!(
        (
            count("received"),
            count("duplicate"),
            count("rate_limited"),
            count("invalid")
        ),
        (7, 1, 1, 3)
    );
    // Held for moderation: waiting for an operator.
    assert_eq!(bed.metrics.ideas_awaiting_operator.get(), 1);
}

on_both_backends!(deadlines);
async fn deadlines(mut bed: Bed) {
    bed.organisations(&["a", "b", "c"]).await;
    bed.rules(
        r#"{"rules":[{"name":"all-env","priority":1,"match":{"categories":["environment"]},"targets":["a","b","c"],
            "strategy":"round_robin","sla":{"confirm_within":"1h","act_within":"2days"}}],"max_attempts":2}"#,
    )
    .await;
    let i = idea(1, "Organizujmo akciju sadnje drveća");
    bed.submit("mostar-01", &i).await.unwrap();
    bed.clock.advance(TimeDelta::minutes(59));
    assert_eq!(bed.routing.tick().await.unwrap(), 0);
    bed.clock.advance(TimeDelta::minutes(2));
    assert_eq!(bed.routing.tick().await.unwrap(), 1);
    let now = bed.routing.idea(&i.idea_id).await.unwrap();
    assert_eq!(
        (now.offered_to.clone(), now.excluded.clone()),
        (vec!["b".to_owned()], vec!["a".to_owned()])
    );
    assert_eq!((now.attempts, now.deadline), (2, Some(bed.now() + TimeDelta::hours(1))));
    // Fires once: nothing is due any more.
    assert_eq!(bed.routing.tick().await.unwrap(), 0);

    // A restart keeps the deadline; the second expiry is the last attempt: escalated.
    bed.restart().await;
    bed.clock.advance(TimeDelta::minutes(61));
    assert_eq!(bed.routing.tick().await.unwrap(), 1);
    assert_eq!(bed.routing.tick().await.unwrap(), 0);
    bed.restart().await;
    assert_eq!(bed.routing.tick().await.unwrap(), 0);
    let escalated = bed.routing.idea(&i.idea_id).await.unwrap();
    assert_eq!((escalated.state, escalated.deadline), (IdeaState::Escalated, None));
    assert_eq!(
        bed.events(&i.idea_id).await,
        [
            ev("received", IdeaState::Received, None),
            ev("offered", IdeaState::Offered, Some("a")),
            ev("expired", IdeaState::Offered, Some("a")),
            ev("offered", IdeaState::Offered, Some("b")),
            ev("expired", IdeaState::Offered, Some("b")),
            ev("escalated", IdeaState::Escalated, None),
        ]
    );
    let expired = bed
        .metrics
        .idea_deadlines_expired
        .get_or_create(&StatusLabel { status: "confirm" })
        .get();
    assert_eq!(expired, 2);

    // A coordinator assigns it; the organisation confirms; the action deadline passes once.
    let ops = Actor {
        subject: "ops".into(),
        org: None,
    };
    bed.routing
        .act(&i.idea_id, IdeaAction::Assign("c".into()), &ops, &Notes::default())
        .await
        .unwrap();
    let c = Actor {
        subject: "member@c".into(),
        org: Some("c".into()),
    };
    let confirmed = bed
        .routing
        .act(&i.idea_id, IdeaAction::Confirm, &c, &Notes::default())
        .await
        .unwrap();
    assert_eq!(confirmed.deadline, Some(bed.now() + TimeDelta::days(2)));
    bed.clock.advance(TimeDelta::days(2));
    assert_eq!(bed.routing.tick().await.unwrap(), 1);
    bed.restart().await;
    bed.clock.advance(TimeDelta::days(30));
    assert_eq!(bed.routing.tick().await.unwrap(), 0);
    let history = bed.events(&i.idea_id).await;
    assert_eq!(history.iter().filter(|e| e.0 == "act_overdue").count(), 1);
    assert_eq!(
        history.last(),
        Some(&ev("act_overdue", IdeaState::Confirmed, Some("c")))
    );
}

on_both_backends!(round_robin_survives_a_restart);
async fn round_robin_survives_a_restart(mut bed: Bed) {
    bed.organisations(&["a", "b", "c"]).await;
    bed.rules(r#"{"rules":[{"name":"rr","priority":1,"targets":["a","b","c"],"strategy":"round_robin"}]}"#)
        .await;
    let mut offered = Vec::new();
    for n in 1..=4 {
        if n == 3 {
            bed.restart().await;
        }
        let i = idea(n, &format!("Prijedlog broj {n} za naše naselje"));
        bed.submit("zavidovici-01", &i).await.unwrap();
        offered.extend(bed.routing.idea(&i.idea_id).await.unwrap().offered_to);
    }
    assert_eq!(offered, ["a", "b", "c", "a"]);
}

on_both_backends!(organisations_decline_and_see_only_their_own);
async fn organisations_decline_and_see_only_their_own(mut bed: Bed) {
    bed.organisations(&["a", "b", "c"]).await;
    bed.rules(
        r#"{"rules":[{"name":"ll","priority":1,"targets":["a","b","c"],"strategy":"least_loaded"}],
            "defaults":{"Mostar":"c"}}"#,
    )
    .await;
    let a = Actor {
        subject: "amra".into(),
        org: Some("a".into()),
    };
    let b = Actor {
        subject: "bojan".into(),
        org: Some("b".into()),
    };
    let mut first = idea(1, "Zovite me na 061 123 456 ili amra@mail.ba za park");
    first.contact = Some(Contact {
        email: None,
        phone: Some("061 123 456".into()),
        consent: true,
    });
    bed.submit("mostar-01", &first).await.unwrap();
    let second = idea(2, "Pišite na info@primjer.ba, trebaju nam klupe");
    bed.submit("mostar-01", &second).await.unwrap();
    // Least loaded: a took the first, b has none yet.
    let id1 = first.idea_id.as_str();
    let id2 = second.idea_id.as_str();
    assert_eq!(bed.routing.idea(id2).await.unwrap().offered_to, ["b"]);

    // b cannot act on a's idea, and does not see it in its inbox.
    let err = bed
        .routing
        .act(id1, IdeaAction::Confirm, &b, &Notes::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RoutingError::Lifecycle(LifecycleError::NotYours(_))),
        "{err}"
    );
    let inbox = |org: &str| IdeaFilter {
        states: vec![IdeaState::Offered],
        org: Some(org.into()),
        limit: 10,
        ..IdeaFilter::default()
    };
    let b_inbox: Vec<String> = bed
        .routing
        .ideas(&inbox("b"))
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(b_inbox, [id2]);

    // b declines: least loaded among a and c (a holds one) is c.
    let notes = Notes {
        reason: Some("izvan našeg područja".into()),
        ..Notes::default()
    };
    let rerouted = bed.routing.act(id2, IdeaAction::Decline, &b, &notes).await.unwrap();
    assert_eq!(
        (rerouted.offered_to.clone(), rerouted.excluded.clone()),
        (vec!["c".to_owned()], vec!["b".to_owned()])
    );
    assert!(bed.routing.ideas(&inbox("b")).await.unwrap().is_empty());

    // What each reader sees of the first idea.
    let record = bed.routing.idea(id1).await.unwrap();
    let codes = Default::default();
    let as_b = Reader::Organisation("b".into());
    assert!(!as_b.may_see(&record));
    let as_a = Reader::Organisation("a".into());
    let offered_view = as_a.view(&record, &codes);
    // Consent given: a sees the text as written, but the contact only once it confirms.
    assert_eq!(
        (
            offered_view.text.as_str(),
            offered_view.contact.clone(),
            offered_view.has_contact
        ),
        (record.text.as_str(), None, true)
    );
    let notes = Notes {
        public: Some("Preuzeli smo vašu ideju. Kontakt: amra@mail.ba".into()),
        internal: Some("javiti se građaninu".into()),
        ..Notes::default()
    };
    let confirmed = bed.routing.act(id1, IdeaAction::Confirm, &a, &notes).await.unwrap();
    assert_eq!(as_a.view(&confirmed, &codes).contact, first.contact);
    assert_eq!(Reader::Moderator.view(&confirmed, &codes).contact, None);
    // No consent on the second idea: c sees it redacted.
    let c_view = Reader::Organisation("c".into()).view(&bed.routing.idea(id2).await.unwrap(), &codes);
    assert_eq!(c_view.text, "Pišite na [e-mail], trebaju nam klupe");
    assert!(c_view.redacted);
    assert_eq!(
        Reader::Viewer.view(&confirmed, &codes).text,
        "Zovite me na [phone] ili [e-mail] za park"
    );
    // b's history view of its declined idea hides nothing of its own, c's internal notes stay hidden.
    let history = bed.routing.history(id2).await.unwrap();
    let for_c = Reader::Organisation("c".into()).history(&history);
    assert!(for_c.iter().all(|s| s.org_id.as_deref() != Some("b")), "{for_c:?}");

    // The public page: state, the organisation's name, public notes (redacted).
    bed.routing
        .act(
            id1,
            IdeaAction::Complete,
            &a,
            &Notes {
                public: Some("Klupe postavljene.".into()),
                ..Notes::default()
            },
        )
        .await
        .unwrap();
    let public = bed.routing.public(&record.tracking_code).await.unwrap();
    assert_eq!(
        (public.state, public.organisation.as_deref()),
        (PublicState::Completed, Some("a"))
    );
    let notes: Vec<&str> = public.notes.iter().map(|n| n.note.as_str()).collect();
    assert_eq!(
        notes,
        ["Preuzeli smo vašu ideju. Kontakt: [e-mail]", "Klupe postavljene."]
    );

    // The report: two ideas in Mostar, one completed after being confirmed at once.
    let report = bed
        .routing
        .report(bed.now() - TimeDelta::hours(1), bed.now() + TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!(report.total, 2);
    assert_eq!(report.by_municipality["Mostar"]["completed"], 1);
    assert_eq!(report.by_municipality["Mostar"]["offered"], 1);
    assert_eq!(report.confirmations.len(), 1);
    assert_eq!(
        (
            report.confirmations[0].org_id.as_str(),
            report.confirmations[0].median_seconds
        ),
        ("a", 0.0)
    );
}

/// The store goes away: ideas wait, unacknowledged, and are stored and acknowledged once it is
/// back, each once.
async fn outage(url: &str) {
    let inner = connect(url, &Default::default()).await.unwrap();
    inner.migrate().await.unwrap();
    let store = Arc::new(Outage::new(inner.clone()));
    let acks = Arc::new(Acks::default());
    let settings = RoutingSettings {
        tick: std::time::Duration::from_millis(20),
        ..RoutingSettings::default()
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let (routing, task) = Routing::start(
        Arc::new(Fleet::link4()),
        settings,
        store.clone(),
        acks.clone(),
        Arc::new(SystemClock),
        Arc::new(Metrics::new()),
        stop.clone(),
    )
    .await
    .unwrap();
    let bench = BenchId::parse("ravno-01").unwrap();
    store.set_down(true);
    let wait = |what: &'static str, done: Box<dyn Fn() -> bool + Send>| async move {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    };
    routing.on_idea(&bench, idea(1, "Nova rasvjeta u selu").to_json().into(), Utc::now());
    let r = routing.clone();
    wait("the first idea held for retry", Box::new(move || r.retrying() == 1)).await;
    routing.on_idea(&bench, idea(2, "Novi autobus do Trebinja").to_json().into(), Utc::now());
    routing.on_idea(&bench, idea(1, "Nova rasvjeta u selu").to_json().into(), Utc::now());
    let r = routing.clone();
    wait("three submissions held", Box::new(move || r.retrying() == 3)).await;
    assert!(
        acks.0.lock().unwrap().is_empty(),
        "nothing is acknowledged before it is stored"
    );

    store.set_down(false);
    let r = routing.clone();
    wait("the queue drained", Box::new(move || r.retrying() == 0)).await;
    let sent: Vec<(AckStatus, Option<String>)> = acks
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(_, a)| (a.status, a.tracking_code.clone()))
        .collect();
    let code = |n: u32| Some(format!("RAV-{}-{n:04}", Utc::now().year()));
    assert_eq!(
        sent,
        [
            (AckStatus::Received, code(1)),
            (AckStatus::Received, code(2)),
            (AckStatus::Received, code(1))
        ]
    );
    let stored = inner
        .ideas(&IdeaFilter {
            limit: 10,
            ..IdeaFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 2);
    stop.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn outage_on_sqlite() {
    let db = sqlite_database();
    outage(db.url()).await;
}

#[tokio::test]
async fn outage_on_postgres() {
    let Some(db) = pg_database().await else {
        return;
    };
    outage(db.url()).await;
}

on_both_backends!(suspension_withdraws_offers);
async fn suspension_withdraws_offers(mut bed: Bed) {
    bed.organisations(&["a", "b"]).await;
    bed.rules(
        r#"{"rules":[{"name":"both","priority":1,"targets":["a","b"],"strategy":"all"},
            {"name":"only-a","priority":0,"match":{"categories":["youth"]},"targets":["a"]}],
            "defaults":{"Mostar":"b"}}"#,
    )
    .await;
    let fan_out = idea(1, "Klupe i kante u parku");
    bed.submit("zepce-01", &fan_out).await.unwrap();
    let mut youth = idea(2, "Radionice za mlade u domu kulture");
    youth.category = "youth".into();
    bed.submit("mostar-01", &youth).await.unwrap();
    let confirmed = idea(3, "Nova staza uz rijeku za bicikle");
    bed.submit("zepce-01", &confirmed).await.unwrap();
    let a = Actor {
        subject: "amra".into(),
        org: Some("a".into()),
    };
    bed.routing
        .act(&confirmed.idea_id, IdeaAction::Confirm, &a, &Notes::default())
        .await
        .unwrap();

    bed.routing
        .decide_organisation("ops", "a", "suspend", Some("inactive for months".into()))
        .await
        .unwrap();
    // The fan-out keeps its other offer; the youth idea is routed again without a (the next
    // rule, fan-out to the eligible b); what a confirmed stays its own.
    let after = |id: &str| {
        let routing = bed.routing.clone();
        let id = id.to_owned();
        async move { routing.idea(&id).await.unwrap() }
    };
    let f = after(&fan_out.idea_id).await;
    assert_eq!(
        (f.state, f.offered_to.clone(), f.excluded.clone()),
        (IdeaState::Offered, vec!["b".to_owned()], vec!["a".to_owned()])
    );
    let y = after(&youth.idea_id).await;
    assert_eq!(
        (y.state, y.offered_to.clone(), y.rule.clone(), y.attempts),
        (IdeaState::Offered, vec!["b".to_owned()], Some("both".to_owned()), 2)
    );
    let c = after(&confirmed.idea_id).await;
    assert_eq!((c.state, c.org_id.as_deref()), (IdeaState::Confirmed, Some("a")));
    let withdrawn: Vec<_> = bed
        .events(&youth.idea_id)
        .await
        .into_iter()
        .filter(|e| e.0 == "withdrawn")
        .collect();
    assert_eq!(withdrawn, [ev("withdrawn", IdeaState::Offered, Some("a"))]);
    // A suspended organisation is never chosen again; reactivated, it is.
    let mut more = idea(4, "Još radionica za mlade");
    more.category = "youth".into();
    bed.submit("mostar-01", &more).await.unwrap();
    assert_eq!(after(&more.idea_id).await.offered_to, ["b"]);
    bed.routing
        .decide_organisation("ops", "a", "reactivate", None)
        .await
        .unwrap();
    let mut last = idea(5, "Ljetni kamp za mlade");
    last.category = "youth".into();
    bed.submit("mostar-01", &last).await.unwrap();
    assert_eq!(after(&last.idea_id).await.offered_to, ["a"]);
}
