//! The network: organisations joining, operators' decisions on them (a suspension takes back
//! their offers), and the versioned routing rules with their tester.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use protocol::IdeaState;
use tracing::info;

use super::{
    Application, Decision, IdeaFacts, IdeaFilter, Notes, OrgState, Organisation, Routing, RoutingAudit, RoutingError,
    RoutingWrite, RuleSet, RuleSetRecord, State, lifecycle, view,
};

impl Routing {
    // --- Organisations ---

    /// Every organisation, by id.
    pub async fn organisations(&self) -> BTreeMap<String, Organisation> {
        self.shared.state.lock().await.organisations.clone()
    }

    /// Records an application to join the network (state `applied`).
    pub async fn apply(&self, application: Application) -> Result<Organisation, RoutingError> {
        let errors = application.validate(&self.shared.fleet);
        if !errors.is_empty() {
            return Err(RoutingError::Invalid(errors));
        }
        let now = self.now();
        let mut state = self.shared.state.lock().await;
        let base = view::slug(&application.name);
        let id = (1..)
            .map(|n| if n == 1 { base.clone() } else { format!("{base}-{n}") })
            .find(|id| !state.organisations.contains_key(id))
            .unwrap_or(base);
        let org = application.into_organisation(id, now);
        let write = RoutingWrite {
            organisations: vec![org.clone()],
            audit: vec![RoutingAudit {
                id: 0,
                at: now,
                actor: "public".into(),
                action: "organisation.apply".into(),
                subject: org.id.clone(),
                detail: serde_json::json!({ "name": org.name, "municipalities": org.municipalities }),
            }],
            ..RoutingWrite::default()
        };
        self.shared.store.routing_write(&write).await?;
        state.organisations.insert(org.id.clone(), org.clone());
        info!(org.id = %org.id, "organisation applied to join");
        Ok(org)
    }

    /// An operator's decision on an organisation: `approve` (applied → active), `reject`
    /// (applied → rejected), `suspend` (active → suspended), `reactivate` (suspended → active).
    pub async fn decide_organisation(
        &self,
        actor: &str,
        id: &str,
        decision: &str,
        note: Option<String>,
    ) -> Result<Organisation, RoutingError> {
        let now = self.now();
        let mut state = self.shared.state.lock().await;
        let org = state
            .organisations
            .get(id)
            .ok_or_else(|| RoutingError::UnknownOrganisation(id.to_owned()))?;
        let to = match (decision, org.state) {
            ("approve", OrgState::Applied) | ("reactivate", OrgState::Suspended) => OrgState::Active,
            ("reject", OrgState::Applied) => OrgState::Rejected,
            ("suspend", OrgState::Active) => OrgState::Suspended,
            (_, from) => {
                return Err(RoutingError::Conflict(format!(
                    "cannot {decision} an organisation that is {}",
                    from.as_str()
                )));
            }
        };
        let mut next = org.clone();
        let from = next.state;
        next.state = to;
        next.updated_at = now;
        next.decided_by = Some(actor.to_owned());
        next.note = note.clone();
        let write = RoutingWrite {
            organisations: vec![next.clone()],
            audit: vec![RoutingAudit {
                id: 0,
                at: now,
                actor: actor.to_owned(),
                action: format!("organisation.{decision}"),
                subject: id.to_owned(),
                detail: serde_json::json!({ "from": from.as_str(), "to": to.as_str(), "note": note }),
            }],
            ..RoutingWrite::default()
        };
        self.shared.store.routing_write(&write).await?;
        state.organisations.insert(id.to_owned(), next.clone());
        info!(org.id = %id, org.state = to.as_str(), user.sub = %actor, "organisation {decision}d");
        if to == OrgState::Suspended {
            self.withdraw_offers(&mut state, id, actor, now).await?;
        }
        Ok(next)
    }

    /// Takes back what a suspended organisation is offered: each idea goes to its other offers,
    /// or is routed again without it. One write per idea; an idea left behind by a failed write
    /// is re-offered when its deadline passes.
    async fn withdraw_offers(
        &self,
        state: &mut State,
        org: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RoutingError> {
        let filter = IdeaFilter {
            states: vec![IdeaState::Offered],
            org: Some(org.to_owned()),
            limit: 10_000,
            ..IdeaFilter::default()
        };
        for mut idea in self.shared.store.ideas(&filter).await? {
            if !idea.offered_to.iter().any(|o| o == org) {
                continue;
            }
            idea.offered_to.retain(|o| o != org);
            idea.excluded.push(org.to_owned());
            idea.updated_at = now;
            let notes = Notes {
                internal: Some("organisation suspended".into()),
                ..Notes::default()
            };
            let withdrawn = lifecycle::event(
                &idea,
                now,
                actor,
                "withdrawn",
                Some(IdeaState::Offered),
                Some(org),
                &notes,
            );
            let needs_routing = idea.offered_to.is_empty();
            let events = self
                .settle(state, &mut idea, vec![withdrawn], needs_routing, now, actor)
                .await?;
            info!(idea.code = %idea.tracking_code, org.id = %org, idea.state = %idea.state, "offer withdrawn from a suspended organisation");
            self.announce(&idea, &events).await;
        }
        Ok(())
    }

    /// Routing audit entries, newest first.
    pub async fn audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<RoutingAudit>, RoutingError> {
        Ok(self.shared.store.routing_audit(before, limit).await?)
    }

    // --- Rules ---

    /// The rule set in force (version 0, empty, before anyone set one).
    pub async fn rules(&self) -> RuleSetRecord {
        self.shared.state.lock().await.rules.clone()
    }

    /// Earlier versions, newest first.
    pub async fn rule_versions(&self, limit: u32) -> Result<Vec<RuleSetRecord>, RoutingError> {
        Ok(self.shared.store.rule_sets(limit).await?)
    }

    /// Replaces the whole rule set, as a new version.
    pub async fn set_rules(&self, actor: &str, rules: RuleSet) -> Result<RuleSetRecord, RoutingError> {
        let mut state = self.shared.state.lock().await;
        let errors = rules.validate(&state.organisations, &self.shared.fleet);
        if !errors.is_empty() {
            return Err(RoutingError::Invalid(errors));
        }
        let record = RuleSetRecord {
            version: state.rules.version + 1,
            rules,
            created_by: actor.to_owned(),
            created_at: self.now(),
        };
        let write = RoutingWrite {
            rule_set: Some(record.clone()),
            ..RoutingWrite::default()
        };
        self.shared.store.routing_write(&write).await?;
        state.rules = record.clone();
        info!(routing.version = record.version, routing.rules = record.rules.rules.len(), user.sub = %actor, "routing rules replaced");
        Ok(record)
    }

    /// Runs an idea through `rules` (the set in force when `None`) without changing anything,
    /// and explains the outcome. A past idea is routed as it would be now, without the
    /// organisations that already declined it.
    pub async fn test_rules(
        &self,
        facts: &IdeaFacts,
        excluded: &[String],
        rules: Option<&RuleSet>,
    ) -> Result<Decision, RoutingError> {
        let state = self.shared.state.lock().await;
        if let Some(rules) = rules {
            let errors = rules.validate(&state.organisations, &self.shared.fleet);
            if !errors.is_empty() {
                return Err(RoutingError::Invalid(errors));
            }
        }
        Ok(self.decide(&state, facts, excluded, rules).await?)
    }
}
