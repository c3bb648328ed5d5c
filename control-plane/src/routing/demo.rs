//! The demo network (`serve --demo`): three organisations and a rule set, so ideas from the
//! simulated kiosks are routed, confirmed and visible from the first minute. Seeded once: a
//! store that already has organisations or rules is left alone.

use std::collections::BTreeMap;

use protocol::Fleet;
use tracing::info;

use super::{Application, Match, Routing, RoutingError, Rule, RuleSet, Sla, Strategy};

/// The organisation every municipality defaults to; its member token is the demo's CSO token.
pub const DEFAULT_ORG: &str = "agencija-lokalne-demokratije-demo";

/// Seeds the demo network unless the store has one.
pub async fn seed(routing: &Routing, fleet: &Fleet) -> Result<(), RoutingError> {
    if !routing.organisations().await.is_empty() || routing.rules().await.version > 0 {
        return Ok(());
    }
    let mut municipalities: Vec<String> = fleet.iter().map(|b| b.municipality.clone()).collect();
    municipalities.sort();
    municipalities.dedup();
    let members = [
        ("Agencija lokalne demokratije (demo)", vec![]),
        ("Zeleni grad (demo)", vec!["environment".to_owned()]),
        (
            "Omladinski centar (demo)",
            vec!["youth".to_owned(), "culture".to_owned()],
        ),
    ];
    let mut ids = Vec::new();
    for (name, categories) in members {
        let org = routing
            .apply(Application {
                name: name.to_owned(),
                municipalities: municipalities.clone(),
                categories,
                contact_email: "demo@benchfleet.invalid".to_owned(),
                contact_phone: None,
                website: None,
                description: Some("A made-up organisation of the demo network.".to_owned()),
            })
            .await?;
        routing
            .decide_organisation("demo", &org.id, "approve", Some("demo network".to_owned()))
            .await?;
        ids.push(org.id);
    }
    let rule = |name: &str, priority, matches, targets: &[&String], strategy| Rule {
        name: name.to_owned(),
        priority,
        matches,
        targets: targets.iter().map(|t| (*t).clone()).collect(),
        strategy,
        sla: Sla::default(),
    };
    let categories = |c: &[&str]| Match {
        categories: c.iter().map(|c| (*c).to_owned()).collect(),
        ..Match::default()
    };
    let rules = RuleSet {
        rules: vec![
            rule(
                "environment",
                10,
                categories(&["environment"]),
                &[&ids[1]],
                Strategy::RoundRobin,
            ),
            rule(
                "youth-and-culture",
                20,
                categories(&["youth", "culture"]),
                &[&ids[2]],
                Strategy::RoundRobin,
            ),
            rule(
                "streets-and-light",
                30,
                Match {
                    keywords: ["rasvjet", "staz", "cest", "trotoar", "autobus"]
                        .map(str::to_owned)
                        .to_vec(),
                    ..Match::default()
                },
                &[&ids[0], &ids[1]],
                Strategy::LeastLoaded,
            ),
        ],
        defaults: municipalities
            .iter()
            .map(|m| (m.clone(), ids[0].clone()))
            .collect::<BTreeMap<_, _>>(),
        ..RuleSet::default()
    };
    routing.set_rules("demo", rules).await?;
    info!(routing.organisations = ids.len(), "demo network seeded");
    Ok(())
}
