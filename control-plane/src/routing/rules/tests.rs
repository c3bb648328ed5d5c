//! Rule matching as a table: municipality, bench, category, language and keyword conditions
//! (Cyrillic and Latin alike), priorities, the three strategies, inactive and excluded
//! organisations, the municipality default, unroutable ideas, and validation.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use protocol::Fleet;

use super::*;

fn org(id: &str, state: OrgState) -> (String, Organisation) {
    let t: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
    (
        id.to_owned(),
        Organisation {
            id: id.into(),
            name: format!("Org {id}"),
            municipalities: vec!["Mostar".into()],
            categories: vec![],
            contact_email: format!("{id}@example.org"),
            contact_phone: None,
            website: None,
            description: None,
            state,
            created_at: t,
            updated_at: t,
            decided_by: None,
            note: None,
        },
    )
}

fn organisations() -> BTreeMap<String, Organisation> {
    [
        org("a", OrgState::Active),
        org("b", OrgState::Active),
        org("c", OrgState::Active),
        org("s", OrgState::Suspended),
        org("x", OrgState::Applied),
    ]
    .into_iter()
    .collect()
}

fn rule(name: &str, priority: i32, matches: Match, targets: &[&str], strategy: Strategy) -> Rule {
    Rule {
        name: name.into(),
        priority,
        matches,
        targets: targets.iter().map(|t| (*t).to_owned()).collect(),
        strategy,
        sla: Sla::default(),
    }
}

fn strings(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|x| (*x).to_owned()).collect()
}

/// Listed out of priority order on purpose: priority, not position, decides.
fn rules() -> RuleSet {
    RuleSet {
        rules: vec![
            rule(
                "youth-rr",
                50,
                Match {
                    categories: strings(&["youth"]),
                    ..Match::default()
                },
                &["a", "b", "c"],
                Strategy::RoundRobin,
            ),
            rule(
                "mostar-environment",
                10,
                Match {
                    municipalities: strings(&["mostar"]),
                    categories: strings(&["environment"]),
                    ..Match::default()
                },
                &["a"],
                Strategy::RoundRobin,
            ),
            rule(
                "lighting",
                20,
                Match {
                    keywords: strings(&["rasvjet", "ulična svjetla"]),
                    ..Match::default()
                },
                &["b"],
                Strategy::RoundRobin,
            ),
            rule(
                "serbian",
                30,
                Match {
                    languages: strings(&["sr"]),
                    ..Match::default()
                },
                &["c"],
                Strategy::RoundRobin,
            ),
            rule(
                "zepce-bench",
                40,
                Match {
                    benches: strings(&["zepce-01"]),
                    ..Match::default()
                },
                &["s", "x"],
                Strategy::All,
            ),
            rule(
                "social-least-loaded",
                60,
                Match {
                    categories: strings(&["social"]),
                    ..Match::default()
                },
                &["a", "b", "c"],
                Strategy::LeastLoaded,
            ),
            rule(
                "culture-all",
                70,
                Match {
                    categories: strings(&["culture"]),
                    ..Match::default()
                },
                &["a", "s", "b"],
                Strategy::All,
            ),
        ],
        defaults: [
            ("Trebinje".to_owned(), "c".to_owned()),
            ("Ravno".to_owned(), "s".to_owned()),
        ]
        .into_iter()
        .collect(),
        ..RuleSet::default()
    }
}

fn facts(bench: &str, municipality: &str, category: &str, lang: &str, text: &str) -> IdeaFacts {
    IdeaFacts {
        bench_id: bench.into(),
        municipality: municipality.into(),
        category: category.into(),
        lang: lang.into(),
        text: text.into(),
    }
}

fn decide(
    idea: &IdeaFacts,
    excluded: &[&str],
    cursors: &BTreeMap<String, i64>,
    loads: &BTreeMap<String, i64>,
) -> Decision {
    let organisations = organisations();
    let excluded = strings(excluded);
    rules().route(
        idea,
        &Situation {
            organisations: &organisations,
            excluded: &excluded,
            cursors,
            loads,
        },
    )
}

/// (rule, organisations) of an offer, or ("unroutable", []).
fn outcome(d: &Decision) -> (String, Vec<String>) {
    match &d.route {
        Route::Offer {
            organisations, rule, ..
        } => (rule.clone().unwrap_or_else(|| "default".into()), organisations.clone()),
        Route::Unroutable { .. } => ("unroutable".into(), vec![]),
    }
}

#[test]
fn the_first_matching_rule_by_priority_wins() {
    let none = BTreeMap::new();
    #[rustfmt::skip]
    let table: &[(IdeaFacts, &[&str], &str, &[&str])] = &[
        // Municipality (case and diacritics insensitive) and category.
        (facts("mostar-01", "Mostar", "environment", "bs", "Više kanti za smeće u parku"), &[], "mostar-environment", &["a"]),
        // Also a lighting idea, but mostar-environment has the higher priority.
        (facts("mostar-01", "Mostar", "environment", "bs", "Rasvjeta u parku ne radi"), &[], "mostar-environment", &["a"]),
        // Keyword on Cyrillic text, folded to Latin; beats the language rule by priority.
        (facts("trebinje-01", "Trebinje", "infrastructure", "sr-Cyrl", "Потребна је боља расвјета на путу до школе."), &[], "lighting", &["b"]),
        // A multi-word keyword with diacritics matches Cyrillic text without them.
        (facts("prijedor-01", "Prijedor", "infrastructure", "bs", "УЛИЧНА СВЈЕТЛА не раде"), &[], "lighting", &["b"]),
        // `sr` matches `sr-Latn` and `sr-Cyrl`.
        (facts("prijedor-01", "Prijedor", "infrastructure", "sr-Latn", "Treba nam novi trotoar"), &[], "serbian", &["c"]),
        (facts("prijedor-01", "Prijedor", "infrastructure", "sr-Cyrl", "Треба нам нови тротоар"), &[], "serbian", &["c"]),
        // A matching rule whose organisations are all inactive is skipped.
        (facts("zepce-01", "Žepče", "other", "bs", "Nova klupa kod škole"), &[], "unroutable", &[]),
        // Fan-out to every eligible target, in target order, without the suspended one.
        (facts("maglaj-01", "Maglaj", "culture", "hr", "Ljetno kino na trgu"), &[], "culture-all", &["a", "b"]),
        // Excluded organisations (declined or expired) are never chosen again.
        (facts("maglaj-01", "Maglaj", "culture", "hr", "Ljetno kino na trgu"), &["a"], "culture-all", &["b"]),
        (facts("mostar-01", "Mostar", "environment", "bs", "Više kanti za smeće"), &["a"], "unroutable", &[]),
        // No rule: the municipality's default organisation.
        (facts("trebinje-01", "Trebinje", "other", "bs", "Nova fontana u centru"), &[], "default", &["c"]),
        (facts("trebinje-01", "trebinje", "other", "bs", "Nova fontana u centru"), &["c"], "unroutable", &[]),
        // A suspended default is not chosen.
        (facts("ravno-01", "Ravno", "other", "hr", "Nova fontana u centru"), &[], "unroutable", &[]),
        // No rule and no default.
        (facts("maglaj-01", "Maglaj", "other", "bs", "Nova fontana u centru"), &[], "unroutable", &[]),
    ];
    for (idea, excluded, rule, orgs) in table {
        let d = decide(idea, excluded, &none, &none);
        assert_eq!(
            outcome(&d),
            ((*rule).to_owned(), strings(orgs)),
            "{idea:?} excluding {excluded:?}"
        );
        // Every rule is explained, in priority order, and at most one is chosen.
        let priorities: Vec<i32> = d.rules.iter().map(|c| c.priority).collect();
        assert_eq!(priorities, [10, 20, 30, 40, 50, 60, 70]);
        assert_eq!(
            d.rules.iter().filter(|c| c.chosen).count(),
            usize::from(*rule != "unroutable" && *rule != "default")
        );
    }
}

#[test]
fn explanations_say_why_each_rule_did_not_apply() {
    let none = BTreeMap::new();
    let d = decide(
        &facts("zepce-01", "Žepče", "other", "bs", "Nova klupa kod škole"),
        &[],
        &none,
        &none,
    );
    let check = |name: &str| d.rules.iter().find(|c| c.rule == name).unwrap().clone();
    let mostar = check("mostar-environment");
    assert!(!mostar.matched);
    assert_eq!(
        mostar.reasons,
        [
            r#"municipality Žepče is not one of ["mostar"]"#,
            r#"category other is not one of ["environment"]"#
        ]
    );
    assert_eq!(
        check("lighting").reasons,
        [r#"the text has none of the keywords ["rasvjet", "ulična svjetla"]"#]
    );
    assert_eq!(check("serbian").reasons, [r#"language bs is not one of ["sr"]"#]);
    let zepce = check("zepce-bench");
    assert!(zepce.matched && !zepce.chosen);
    assert_eq!(
        zepce.reasons,
        ["matched, but no organisation is eligible", "s: suspended", "x: applied"]
    );
    match &d.route {
        Route::Unroutable { reason } => assert_eq!(reason, "no rule applies and Žepče has no default organisation"),
        other => panic!("{other:?}"),
    }
    let ravno = decide(&facts("ravno-01", "Ravno", "other", "hr", "Fontana"), &[], &none, &none);
    assert_eq!(ravno.fallback.as_deref(), Some("s: suspended"));
}

#[test]
fn round_robin_gives_three_ideas_to_three_organisations() {
    let loads = BTreeMap::new();
    let mut cursors = BTreeMap::new();
    let idea = facts("maglaj-01", "Maglaj", "youth", "bs", "Radionice za mlade");
    let mut chosen = Vec::new();
    for _ in 0..4 {
        let d = decide(&idea, &[], &cursors, &loads);
        let (key, position) = d.cursor.clone().expect("round robin keeps a position");
        cursors.insert(key, position);
        chosen.extend(outcome(&d).1);
    }
    assert_eq!(chosen, ["a", "b", "c", "a"]);
    // An excluded organisation is skipped without breaking the turn order.
    cursors.insert("youth-rr".into(), 1);
    let d = decide(&idea, &["b"], &cursors, &loads);
    assert_eq!(outcome(&d).1, ["c"]);
    assert_eq!(d.cursor, Some(("youth-rr".to_owned(), 0)));
}

#[test]
fn least_loaded_picks_the_fewest_open_ideas() {
    let cursors = BTreeMap::new();
    let idea = facts("maglaj-01", "Maglaj", "social", "bs", "Pristupačniji centar grada");
    let loads: BTreeMap<String, i64> = [("a".to_owned(), 3), ("b".to_owned(), 1), ("c".to_owned(), 2)].into();
    assert_eq!(outcome(&decide(&idea, &[], &cursors, &loads)).1, ["b"]);
    // Ties go to the earlier target; organisations without open ideas have none.
    let loads: BTreeMap<String, i64> = [("a".to_owned(), 1)].into();
    assert_eq!(outcome(&decide(&idea, &[], &cursors, &loads)).1, ["b"]);
    assert_eq!(outcome(&decide(&idea, &["b"], &cursors, &loads)).1, ["c"]);
    assert_eq!(decide(&idea, &[], &cursors, &loads).cursor, None);
}

#[test]
fn validation_names_every_bad_field() {
    let fleet = Fleet::link4();
    assert_eq!(rules().validate(&organisations(), &fleet), []);
    let mut bad = rules();
    bad.rules[1].targets = vec![];
    bad.rules[2].priority = 30;
    bad.rules[2].targets = strings(&["b", "nobody", "b"]);
    bad.rules[3].name = "Serbian!".into();
    bad.rules[3].matches.municipalities = strings(&["Sarajevo"]);
    bad.rules[4].matches.benches = strings(&["sarajevo-01"]);
    bad.rules[5].name = "youth-rr".into();
    bad.rules[5].sla.confirm_within = Duration::ZERO;
    // The `rules` fuzz target found SLAs long enough to panic the deadline computation.
    bad.rules[5].sla.act_within = Duration::from_secs(11 * 365 * 86_400);
    bad.rules[6].matches.keywords = strings(&["!!"]);
    bad.defaults.insert("Tuzla".into(), "ghost".into());
    bad.max_attempts = 0;
    let fields: Vec<String> = bad
        .validate(&organisations(), &fleet)
        .into_iter()
        .map(|e| format!("{}: {}", e.field, e.message))
        .collect();
    assert_eq!(
        fields,
        [
            "max_attempts: must be at least 1",
            "rules[1].targets: needs at least one organisation",
            r#"rules[2].targets[1]: no organisation "nobody""#,
            r#"rules[2].targets[2]: "b" is listed twice"#,
            "rules[3].name: must be 1-64 lowercase letters, digits, `-` or `_`",
            "rules[3].priority: 30 is also the priority of rules[2]",
            r#"rules[3].match.municipalities[0]: no bench is in "Sarajevo""#,
            r#"rules[4].match.benches[0]: no bench "sarajevo-01" in the registry"#,
            r#"rules[5].name: "youth-rr" is also the name of rules[0]"#,
            "rules[5].sla.confirm_within: must be longer than 0",
            "rules[5].sla.act_within: must be at most 10 years (3650days)",
            "rules[6].match.keywords[0]: has no letters or digits",
            r#"defaults.Tuzla: no bench is in "Tuzla""#,
            r#"defaults.Tuzla: no organisation "ghost""#,
        ]
    );
}

#[test]
fn rule_sets_read_and_write_durations_as_text() {
    let json = r#"{"rules":[{"name":"r","priority":1,"match":{"keywords":["park"]},"targets":["a"],
        "strategy":"least_loaded","sla":{"confirm_within":"48h","act_within":"30days"}}],
        "defaults":{"Mostar":"a"},"max_attempts":2}"#;
    let set: RuleSet = serde_json::from_str(json).unwrap();
    assert_eq!(set.rules[0].sla.confirm_within, Duration::from_secs(48 * 3600));
    assert_eq!(set.rules[0].strategy, Strategy::LeastLoaded);
    let back = serde_json::to_value(&set).unwrap();
    assert_eq!(back["rules"][0]["sla"]["confirm_within"], "2days");
    assert_eq!(serde_json::from_value::<RuleSet>(back).unwrap(), set);
    let e = serde_json::from_str::<RuleSet>(r#"{"rules":[],"max_attemps":2}"#).unwrap_err();
    assert!(e.to_string().contains("max_attemps"), "{e}");
    let e = serde_json::from_str::<Sla>(r#"{"confirm_within":"soon"}"#).unwrap_err();
    assert!(e.to_string().contains("is not a duration like `48h`"), "{e}");
    // Defaults: 3 attempts, 72 h to confirm, 30 days to act.
    let empty: RuleSet = serde_json::from_str("{}").unwrap();
    assert_eq!((empty.max_attempts, empty.default_sla), (3, Sla::default()));
}
