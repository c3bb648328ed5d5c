//! Idea-routing benchmark: rule evaluation alone (pure, in memory), and kiosk intake through
//! `Routing::submit` (decode, checks, duplicate lookup, routing, one transaction) on SQLite and
//! (with `BENCHFLEET_TEST_DATABASE_URL`) PostgreSQL.
//!
//! ```sh
//! cargo bench -p control-plane --bench routing -- [--rules 50] [--decisions 100000] [--ideas 2000] [--runs 3]
//! ```
//!
//! Prints per run: decisions/s against `--rules` rules where an idea matches only the last one
//! (the worst case: every rule is tried and explained), and per backend ideas/s with the
//! per-idea latency p50/p99; then the median run of each.

#![allow(clippy::unwrap_used)] // a benchmark: a failed unwrap is a failed run

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use control_plane::metrics::Metrics;
use control_plane::routing::rules::Situation;
use control_plane::routing::{
    AckSender, IdeaFacts, Match, OrgState, Organisation, Routing, RoutingSettings, RoutingWrite, Rule, RuleSet, Sla,
    Strategy, SystemClock,
};
use control_plane::store::{self, Store};
use hdrhistogram::Histogram;
use protocol::idea::{IdeaAck, IdeaSubmission};
use protocol::{BenchId, Fleet};

struct Args {
    rules: usize,
    decisions: usize,
    ideas: usize,
    runs: usize,
}

fn args() -> Args {
    let mut a = Args {
        rules: 50,
        decisions: 100_000,
        ideas: 2000,
        runs: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .and_then(|v| v.parse::<usize>().ok())
                .expect("a number after the flag")
        };
        match flag.as_str() {
            "--rules" => a.rules = value().max(1),
            "--decisions" => a.decisions = value().max(1),
            "--ideas" => a.ideas = value().max(1),
            "--runs" => a.runs = value().max(1),
            "--bench" => {}
            other => panic!("unknown argument {other}: use --rules N --decisions N --ideas N --runs K"),
        }
    }
    a
}

struct NoAcks;

impl AckSender for NoAcks {
    fn send_ack(&self, _: &BenchId, _: &IdeaAck) -> Result<(), control_plane::broker::BrokerError> {
        Ok(())
    }
}

fn organisation(id: &str) -> Organisation {
    let now = Utc::now();
    Organisation {
        id: id.to_owned(),
        name: id.to_owned(),
        municipalities: vec!["Mostar".into()],
        categories: vec![],
        contact_email: "bench@example.org".into(),
        contact_phone: None,
        website: None,
        description: None,
        state: OrgState::Active,
        created_at: now,
        updated_at: now,
        decided_by: None,
        note: None,
    }
}

/// `n` rules on keywords no idea contains, then one that matches everything.
fn rule_set(n: usize) -> RuleSet {
    let mut rules: Vec<Rule> = (0..n.saturating_sub(1))
        .map(|i| Rule {
            name: format!("r{i}"),
            priority: i32::try_from(i).unwrap_or(i32::MAX),
            matches: Match {
                municipalities: vec!["Mostar".into(), "Žepče".into()],
                keywords: vec![format!("kljucnarijec{i}"), "nepostoji".into()],
                ..Match::default()
            },
            targets: vec!["a".into()],
            strategy: Strategy::RoundRobin,
            sla: Sla::default(),
        })
        .collect();
    rules.push(Rule {
        name: "last".into(),
        priority: i32::MAX,
        matches: Match::default(),
        targets: vec!["a".into(), "b".into(), "c".into()],
        strategy: Strategy::LeastLoaded,
        sla: Sla::default(),
    });
    RuleSet {
        rules,
        ..RuleSet::default()
    }
}

fn decisions(a: &Args) -> f64 {
    let rules = rule_set(a.rules);
    let organisations: BTreeMap<String, Organisation> = ["a", "b", "c"]
        .iter()
        .map(|id| ((*id).to_owned(), organisation(id)))
        .collect();
    let loads = BTreeMap::from([("a".to_owned(), 3), ("b".to_owned(), 1)]);
    let cursors = BTreeMap::new();
    let idea = IdeaFacts {
        bench_id: "mostar-01".into(),
        municipality: "Mostar".into(),
        category: "environment".into(),
        lang: "sr-Cyrl".into(),
        text: "Потребна је боља расвјета на путу до школе, и више клупа у парку.".into(),
    };
    let started = Instant::now();
    let mut chosen = 0;
    for _ in 0..a.decisions {
        let d = rules.route(
            &idea,
            &Situation {
                organisations: &organisations,
                excluded: &[],
                cursors: &cursors,
                loads: &loads,
            },
        );
        chosen += d.rules.iter().filter(|c| c.chosen).count();
    }
    assert_eq!(chosen, a.decisions, "the last rule routes every idea");
    a.decisions as f64 / started.elapsed().as_secs_f64()
}

async fn intake(url: &str, a: &Args) -> (f64, u64, u64) {
    let store = store::connect(url, &Default::default()).await.unwrap();
    store.migrate().await.unwrap();
    let write = RoutingWrite {
        organisations: ["a", "b", "c"].iter().map(|id| organisation(id)).collect(),
        ..RoutingWrite::default()
    };
    store.routing_write(&write).await.unwrap();
    let settings = RoutingSettings {
        bench_burst: u32::MAX,
        ..RoutingSettings::default()
    };
    let (routing, _inputs) = Routing::load(
        Arc::new(Fleet::link4()),
        settings,
        store.clone() as Arc<dyn Store>,
        Arc::new(NoAcks),
        Arc::new(SystemClock),
        Arc::new(Metrics::new()),
    )
    .await
    .unwrap();
    routing.set_rules("bench", rule_set(a.rules)).await.unwrap();
    let fleet = Fleet::link4();
    let benches: Vec<BenchId> = fleet.iter().map(|b| b.id.clone()).collect();
    let mut latency = Histogram::<u64>::new(3).unwrap();
    let started = Instant::now();
    for i in 0..a.ideas {
        let idea = IdeaSubmission {
            v: 1,
            idea_id: format!("00000000-0000-4000-8000-{i:012}"),
            ts: Utc::now(),
            text: format!("Prijedlog broj {i}: više klupa i hlada u parku"),
            category: "environment".into(),
            lang: "bs".into(),
            contact: None,
        };
        let t = Instant::now();
        let ack = routing
            .submit(&benches[i % benches.len()], &idea.to_json(), Utc::now())
            .await
            .unwrap()
            .unwrap();
        latency.record(t.elapsed().as_micros() as u64).unwrap();
        assert!(ack.tracking_code.is_some(), "{ack:?}");
    }
    let rate = a.ideas as f64 / started.elapsed().as_secs_f64();
    (rate, latency.value_at_quantile(0.5), latency.value_at_quantile(0.99))
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

#[tokio::main]
async fn main() {
    let a = args();
    println!(
        "routing benchmark: {} rules, {} decisions, {} ideas, {} runs",
        a.rules, a.decisions, a.ideas, a.runs
    );
    let mut rates = Vec::new();
    for run in 1..=a.runs {
        let r = decisions(&a);
        println!("rules    run {run}: {r:>12.0} decisions/s");
        rates.push(r);
    }
    println!("rules    median: {:.0} decisions/s", median(rates));

    let mut backends: Vec<(&str, Option<String>)> = vec![("sqlite", None)];
    backends.push((
        "postgres",
        std::env::var(control_plane::store::testing::DATABASE_URL_VAR).ok(),
    ));
    for (name, url) in backends {
        let mut rates = Vec::new();
        let mut p50s = Vec::new();
        let mut p99s = Vec::new();
        for run in 1..=a.runs {
            let (rate, p50, p99) = match (name, &url) {
                ("sqlite", _) => {
                    let db = control_plane::store::testing::sqlite_database();
                    intake(db.url(), &a).await
                }
                (_, Some(_)) => {
                    let Some(db) = control_plane::store::testing::pg_database().await else {
                        break;
                    };
                    intake(db.url(), &a).await
                }
                _ => break,
            };
            println!(
                "{name:<8} run {run}: {rate:>8.0} ideas/s, p50 {:.2} ms, p99 {:.2} ms",
                p50 as f64 / 1000.0,
                p99 as f64 / 1000.0
            );
            rates.push(rate);
            p50s.push(p50 as f64 / 1000.0);
            p99s.push(p99 as f64 / 1000.0);
        }
        if rates.is_empty() {
            println!("{name:<8} skipped: set BENCHFLEET_TEST_DATABASE_URL");
        } else {
            println!(
                "{name:<8} median: {:.0} ideas/s, p50 {:.2} ms, p99 {:.2} ms",
                median(rates),
                median(p50s),
                median(p99s)
            );
        }
    }
}
