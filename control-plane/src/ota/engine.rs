//! The OTA state held in memory, and how every change is planned.
//!
//! Nothing here mutates on the way: each operation builds a [`Plan`] (an [`OtaWrite`] plus the
//! benches whose documents must be published), the caller writes it to the store, and only then
//! [`Engine::apply`]s it and publishes. A failed write leaves memory as it was, and a version is
//! never published before the store knows it, so a restart re-publishes exactly what benches
//! may already have seen.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use protocol::config::{BenchConfig, ConfigAck, FieldError};
use protocol::ota::{BenchDiff, RolloutPreview};
use protocol::{BenchId, BenchState, Fleet};
use serde_json::{Map, Value, json};

use super::OtaError;
use super::delivery::BenchConfigRecord;
use super::layers::{Layers, Scope, diff, merge_patch, validate_layer};
use super::records::{AuditEntry, IssuedVersion, LayerRecord, OtaWrite};
use super::rollout::{Action, LayerContent, Observed, Rollout, RolloutRequest, RolloutState};

/// Who acts when nobody did: startup reconciliation, gates, completion.
pub const SYSTEM: &str = "system";

/// Presence and active faults of a bench, for delivery and the rollout gates.
pub type Health<'a> = &'a dyn Fn(&BenchId) -> (BenchState, Option<u64>);

/// OTA state: layers, per-bench desired/reported configuration, rollouts.
#[derive(Debug, Clone)]
pub struct Engine {
    pub fleet: Arc<Fleet>,
    pub layers: Layers,
    pub layer_records: BTreeMap<Scope, LayerRecord>,
    pub benches: BTreeMap<BenchId, BenchConfigRecord>,
    pub rollouts: BTreeMap<String, Rollout>,
}

/// A change ready to be written, then applied and published.
#[derive(Debug)]
pub struct Plan {
    now: DateTime<Utc>,
    pub write: OtaWrite,
    /// Bench rows changed by this plan, by bench.
    changed: BTreeMap<BenchId, BenchConfigRecord>,
    /// Benches whose (new) desired document must be published.
    pub publish: BTreeSet<BenchId>,
}

impl Plan {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            write: OtaWrite::default(),
            changed: BTreeMap::new(),
            publish: BTreeSet::new(),
        }
    }

    /// A bench's row as this plan leaves it.
    fn record<'a>(&'a self, engine: &'a Engine, bench: &BenchId) -> Option<&'a BenchConfigRecord> {
        self.changed.get(bench).or_else(|| engine.benches.get(bench))
    }

    /// Makes `config` the bench's next desired version; returns the version.
    fn issue(
        &mut self,
        engine: &Engine,
        bench: &BenchId,
        config: BenchConfig,
        cause: &str,
        actor: &str,
        rollout: Option<&str>,
    ) -> u64 {
        let rollout_id = rollout.map(str::to_owned);
        let record = match self.record(engine, bench) {
            Some(current) => {
                let mut next = current.clone();
                next.issue(config, rollout_id.clone(), self.now);
                next
            }
            None => {
                let mut first = BenchConfigRecord::first(bench.clone(), config, self.now);
                first.rollout_id.clone_from(&rollout_id);
                first
            }
        };
        let version = record.desired_version;
        self.write.versions.push(IssuedVersion {
            bench_id: bench.clone(),
            version,
            config: record.desired.clone(),
            issued_at: self.now,
            cause: cause.to_owned(),
            actor: actor.to_owned(),
            rollout_id,
        });
        self.publish.insert(bench.clone());
        self.changed.insert(bench.clone(), record);
        version
    }

    fn put(&mut self, record: BenchConfigRecord) {
        self.changed.insert(record.bench_id.clone(), record);
    }

    fn audit(&mut self, actor: &str, action: &str, subject: &str, detail: Value) {
        self.write.audit.push(AuditEntry {
            id: 0,
            at: self.now,
            actor: actor.to_owned(),
            action: action.to_owned(),
            subject: subject.to_owned(),
            detail,
        });
    }

    /// Seals the plan.
    pub fn finish(mut self) -> Self {
        self.write.benches = std::mem::take(&mut self.changed).into_values().collect();
        self
    }

    pub fn is_empty(&self) -> bool {
        self.write.is_empty() && self.changed.is_empty()
    }
}

impl Engine {
    pub fn new(
        fleet: Arc<Fleet>,
        layers: Vec<LayerRecord>,
        benches: Vec<BenchConfigRecord>,
        rollouts: Vec<Rollout>,
    ) -> Self {
        let mut engine = Self {
            fleet,
            layers: Layers::default(),
            layer_records: BTreeMap::new(),
            benches: benches.into_iter().map(|b| (b.bench_id.clone(), b)).collect(),
            rollouts: rollouts.into_iter().map(|r| (r.id.clone(), r)).collect(),
        };
        for record in layers {
            engine.layers.set(record.layer.clone(), record.content.clone());
            engine.layer_records.insert(record.layer.clone(), record);
        }
        engine
    }

    /// Applies a plan the store has accepted.
    pub fn apply(&mut self, write: &OtaWrite) {
        for record in &write.layers {
            self.layers.set(record.layer.clone(), record.content.clone());
            if record.content.is_empty() {
                self.layer_records.remove(&record.layer);
            } else {
                self.layer_records.insert(record.layer.clone(), record.clone());
            }
        }
        for b in &write.benches {
            self.benches.insert(b.bench_id.clone(), b.clone());
        }
        for r in &write.rollouts {
            self.rollouts.insert(r.id.clone(), r.clone());
        }
    }

    /// The running or paused rollout, if any (at most one at a time).
    pub fn active_rollout(&self) -> Option<&Rollout> {
        self.rollouts.values().find(|r| r.state.is_active())
    }

    /// Benches an active rollout controls.
    fn held(&self) -> BTreeSet<BenchId> {
        self.active_rollout()
            .map(|r| r.benches.iter().map(|p| p.bench.clone()).collect())
            .unwrap_or_default()
    }

    /// Issues a version to every registry bench (outside `held`) whose effective configuration
    /// under `layers` differs from its desired one, and a first version to benches without one.
    /// Returns the benches whose effective configuration is invalid (left as they are).
    fn reconcile(
        &self,
        plan: &mut Plan,
        layers: &Layers,
        held: &BTreeSet<BenchId>,
        cause: &str,
        actor: &str,
    ) -> Vec<(BenchId, Vec<FieldError>)> {
        let mut invalid = Vec::new();
        for info in self.fleet.iter() {
            if held.contains(&info.id) {
                continue;
            }
            let effective = match layers.effective(info) {
                Ok(c) => c,
                Err(e) => {
                    invalid.push((info.id.clone(), e));
                    continue;
                }
            };
            match plan.record(self, &info.id) {
                Some(r) if r.desired == effective => {}
                Some(_) => {
                    plan.issue(self, &info.id, effective, cause, actor, None);
                }
                None => {
                    plan.issue(self, &info.id, effective, "initial", actor, None);
                }
            }
        }
        invalid
    }

    /// At startup: first versions for new benches, new versions where the effective
    /// configuration changed (a new release's defaults, a bench that moved municipality).
    pub fn plan_startup(&self, now: DateTime<Utc>) -> Plan {
        let mut plan = Plan::new(now);
        for (bench, errors) in self.reconcile(&mut plan, &self.layers, &self.held(), "reconcile", SYSTEM) {
            let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
            tracing::error!(bench.id = %bench, errors = ?errors, "effective configuration is invalid; keeping the desired one");
        }
        let issued: Vec<Value> = plan
            .write
            .versions
            .iter()
            .map(|v| json!({"bench": v.bench_id, "version": v.version, "cause": v.cause}))
            .collect();
        if !issued.is_empty() {
            plan.audit(SYSTEM, "startup.reconcile", "fleet", json!({ "issued": issued }));
        }
        plan.finish()
    }

    fn check_scope(&self, scope: &Scope) -> Result<(), OtaError> {
        match scope {
            Scope::Fleet => Ok(()),
            Scope::Municipality(m) if self.fleet.iter().any(|b| b.municipality == *m) => Ok(()),
            Scope::Municipality(m) => Err(OtaError::UnknownMunicipality(m.clone())),
            Scope::Bench(b) if self.fleet.contains(b.as_str()) => Ok(()),
            Scope::Bench(b) => Err(OtaError::UnknownBench(b.to_string())),
        }
    }

    /// `layers` with `changes` applied, after validating each new layer.
    fn layers_with(&self, changes: &[(Scope, Map<String, Value>)]) -> Result<Layers, OtaError> {
        let mut layers = self.layers.clone();
        let mut errors = Vec::new();
        for (scope, content) in changes {
            self.check_scope(scope)?;
            match validate_layer(&Value::Object(content.clone())) {
                Ok(content) => layers.set(scope.clone(), content),
                Err(e) if changes.len() == 1 => errors.extend(e),
                Err(e) => errors.extend(e.into_iter().map(|f| FieldError {
                    message: format!("{} (in layer {scope})", f.message),
                    ..f
                })),
            }
        }
        if errors.is_empty() {
            Ok(layers)
        } else {
            Err(OtaError::Invalid(errors))
        }
    }

    /// Each registry bench whose effective configuration under `layers` would differ from its
    /// desired one; invalid effective configurations are errors naming the bench.
    fn diffs(&self, layers: &Layers) -> Result<Vec<(BenchId, BenchConfig, BenchDiff)>, OtaError> {
        let mut out = Vec::new();
        let mut errors: Vec<FieldError> = Vec::new();
        for info in self.fleet.iter() {
            match layers.effective(info) {
                Err(e) => {
                    for f in e {
                        let message = format!("{} (in the effective configuration of {})", f.message, info.id);
                        if !errors.iter().any(|x| x.field == f.field) {
                            errors.push(FieldError { message, ..f });
                        }
                    }
                }
                Ok(effective) => {
                    let current = self.benches.get(&info.id);
                    let before = current.map_or(Value::Null, |r| to_json(&r.desired));
                    let changes = diff(&before, &to_json(&effective));
                    if !changes.is_empty() {
                        let version = current.map_or(0, |r| r.desired_version);
                        out.push((
                            info.id.clone(),
                            effective,
                            BenchDiff {
                                bench: info.id.clone(),
                                version,
                                changes,
                            },
                        ));
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(OtaError::Invalid(errors))
        }
    }

    /// What replacing the layer at `scope` with `content` would change, per bench.
    pub fn dry_run(&self, scope: &Scope, content: &Map<String, Value>) -> Result<Vec<BenchDiff>, OtaError> {
        let layers = self.layers_with(&[(scope.clone(), content.clone())])?;
        Ok(self.diffs(&layers)?.into_iter().map(|(_, _, d)| d).collect())
    }

    /// Replaces the layer at `scope` and issues new versions to every bench it changes, at once.
    pub fn plan_set_layer(
        &self,
        scope: &Scope,
        content: &Map<String, Value>,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(Plan, Vec<BenchDiff>), OtaError> {
        let layers = self.layers_with(&[(scope.clone(), content.clone())])?;
        let diffs = self.diffs(&layers)?;
        if let Some(r) = self.active_rollout() {
            let touches_layer = r.after.iter().any(|l| l.layer == *scope);
            let touches_bench = diffs.iter().find(|(b, _, _)| r.holds(b));
            if touches_layer || touches_bench.is_some() {
                return Err(OtaError::Conflict(format!(
                    "rollout {} is {} and controls {}; wait for it, or abort it",
                    r.id,
                    r.state.as_str(),
                    touches_bench.map_or_else(|| format!("layer {scope}"), |(b, _, _)| format!("bench {b}"))
                )));
            }
        }
        let mut plan = Plan::new(now);
        let before = self.layers.get(scope).cloned().unwrap_or_default();
        let after = layers.get(scope).cloned().unwrap_or_default();
        if before == after {
            return Ok((plan.finish(), Vec::new()));
        }
        plan.write.layers.push(LayerRecord {
            layer: scope.clone(),
            content: after.clone(),
            updated_at: now,
            updated_by: actor.to_owned(),
        });
        for (bench, effective, _) in &diffs {
            plan.issue(self, bench, effective.clone(), "layer", actor, None);
        }
        let benches: Vec<Value> = diffs
            .iter()
            .map(|(b, _, d)| json!({"bench": b, "version": plan.record(self, b).map(|r| r.desired_version), "changes": d.changes}))
            .collect();
        let action = if after.is_empty() { "layer.delete" } else { "layer.set" };
        plan.audit(
            actor,
            action,
            &scope.to_string(),
            json!({"before": before, "after": after, "benches": benches}),
        );
        let diffs = diffs.into_iter().map(|(_, _, d)| d).collect();
        Ok((plan.finish(), diffs))
    }

    /// The layers a rollout request writes, and the benches it changes.
    fn rollout_change(&self, request: &RolloutRequest) -> Result<RolloutChange, OtaError> {
        let scopes = request.target.scopes();
        if scopes.is_empty() {
            return Err(OtaError::Invalid(vec![FieldError::new("target", "names no layer")]));
        }
        if !request.change.is_object() {
            return Err(OtaError::Invalid(vec![FieldError::new(
                "change",
                "must be a JSON object (a merge patch)",
            )]));
        }
        let mut before = Vec::new();
        let mut after = Vec::new();
        for scope in scopes {
            self.check_scope(&scope)?;
            let current = self.layers.get(&scope).cloned().unwrap_or_default();
            let mut next = Value::Object(current.clone());
            merge_patch(&mut next, &request.change);
            let Value::Object(next) = next else {
                continue;
            };
            before.push(LayerContent {
                layer: scope.clone(),
                content: current,
            });
            after.push(LayerContent {
                layer: scope,
                content: next,
            });
        }
        let changes: Vec<(Scope, Map<String, Value>)> =
            after.iter().map(|l| (l.layer.clone(), l.content.clone())).collect();
        let layers = self.layers_with(&changes)?;
        let affected = self.diffs(&layers)?;
        if affected.is_empty() {
            return Err(OtaError::NoChange);
        }
        let ids: Vec<BenchId> = affected.iter().map(|(b, _, _)| b.clone()).collect();
        let errors = request.strategy.validate(&ids);
        if !errors.is_empty() {
            return Err(OtaError::Invalid(errors));
        }
        Ok(RolloutChange {
            before,
            after,
            affected,
        })
    }

    /// What a rollout would change, per bench, and its steps.
    pub fn preview_rollout(&self, request: &RolloutRequest) -> Result<RolloutPreview, OtaError> {
        let change = self.rollout_change(request)?;
        let ids: Vec<BenchId> = change.affected.iter().map(|(b, _, _)| b.clone()).collect();
        Ok(RolloutPreview {
            steps: request.strategy.steps(&ids),
            benches: change.affected.into_iter().map(|(_, _, d)| d).collect(),
        })
    }

    /// Creates a rollout and runs its first tick (the first step starts now).
    pub fn plan_create_rollout(
        &self,
        id: String,
        request: RolloutRequest,
        actor: &str,
        now: DateTime<Utc>,
        health: Health<'_>,
    ) -> Result<(Plan, Rollout), OtaError> {
        if let Some(r) = self.active_rollout() {
            return Err(OtaError::Conflict(format!(
                "rollout {} is {}; one rollout at a time",
                r.id,
                r.state.as_str()
            )));
        }
        let change = self.rollout_change(&request)?;
        let affected = change
            .affected
            .iter()
            .map(|(b, to, _)| {
                let from = self.benches.get(b).map_or_else(|| to.clone(), |r| r.desired.clone());
                (b.clone(), from, to.clone())
            })
            .collect();
        let diffs: Vec<&BenchDiff> = change.affected.iter().map(|(_, _, d)| d).collect();
        let mut rollout = Rollout::new(id, request, actor, change.before, change.after, affected, now);
        let mut plan = Plan::new(now);
        plan.audit(
            actor,
            "rollout.create",
            &rollout.id,
            json!({"target": rollout.target, "change": rollout.change, "strategy": rollout.strategy,
                   "note": rollout.note, "benches": diffs}),
        );
        self.tick_rollout(&mut plan, &mut rollout, now, health);
        plan.write.rollouts.push(rollout.clone());
        Ok((plan.finish(), rollout))
    }

    /// Advances one rollout inside `plan`, carrying out its actions.
    fn tick_rollout(&self, plan: &mut Plan, rollout: &mut Rollout, now: DateTime<Utc>, health: Health<'_>) {
        let actions = {
            let observe = |b: &BenchId| {
                let record = plan.record(self, b)?;
                let (presence, faults) = health(b);
                Some(Observed {
                    presence,
                    faults,
                    desired_version: record.desired_version,
                    delivery: record.state,
                    error: record.error.clone(),
                })
            };
            rollout.tick(now, &observe)
        };
        let before = rollout.state;
        self.carry_out(plan, rollout, actions, SYSTEM);
        match (before, rollout.state) {
            (_, RolloutState::Aborted) => plan.audit(
                SYSTEM,
                "rollout.auto_abort",
                &rollout.id,
                json!({"reason": rollout.reason, "rolled_back": rolled_back(rollout)}),
            ),
            (_, RolloutState::Completed) => plan.audit(
                SYSTEM,
                "rollout.complete",
                &rollout.id,
                json!({"layers": rollout.after, "counts": counts(rollout)}),
            ),
            _ => {}
        }
    }

    fn carry_out(&self, plan: &mut Plan, rollout: &mut Rollout, actions: Vec<Action>, actor: &str) {
        for action in actions {
            match action {
                Action::Issue {
                    bench,
                    config,
                    rollback,
                } => {
                    let cause = if rollback { "rollback" } else { "rollout" };
                    let version = plan.issue(self, &bench, config, cause, actor, Some(&rollout.id));
                    rollout.issued(&bench, version, rollback);
                }
                Action::Commit => {
                    let now = plan.now;
                    let mut layers = self.layers.clone();
                    for l in &rollout.after {
                        layers.set(l.layer.clone(), l.content.clone());
                        plan.write.layers.push(LayerRecord {
                            layer: l.layer.clone(),
                            content: l.content.clone(),
                            updated_at: now,
                            updated_by: rollout.created_by.clone(),
                        });
                    }
                    // The rollout no longer holds its benches: bring anything else in line.
                    self.reconcile(plan, &layers, &BTreeSet::new(), "reconcile", SYSTEM);
                }
            }
        }
    }

    /// Time-driven changes: delivery states, then every active rollout.
    pub fn plan_tick(&self, now: DateTime<Utc>, ack_timeout: Duration, health: Health<'_>) -> Plan {
        let mut plan = Plan::new(now);
        for info in self.fleet.iter() {
            // Only these states change with time; skip the clone for the rest.
            let waiting = |r: &&BenchConfigRecord| {
                matches!(
                    r.state,
                    super::delivery::DeliveryState::Pending | super::delivery::DeliveryState::Delivered
                )
            };
            if let Some(record) = self.benches.get(&info.id).filter(waiting) {
                let mut next = record.clone();
                if next.on_tick(health(&info.id).0, ack_timeout, now) {
                    plan.put(next);
                }
            }
        }
        let active: Vec<Rollout> = self
            .rollouts
            .values()
            .filter(|r| r.state == RolloutState::Running)
            .cloned()
            .collect();
        for mut rollout in active {
            let before = rollout.clone();
            self.tick_rollout(&mut plan, &mut rollout, now, health);
            if rollout_changed(&before, &rollout) {
                plan.write.rollouts.push(rollout);
            }
        }
        plan.finish()
    }

    /// A bench's acknowledgement.
    pub fn plan_ack(&self, bench: &BenchId, ack: &ConfigAck, now: DateTime<Utc>) -> Plan {
        let mut plan = Plan::new(now);
        if let Some(record) = self.benches.get(bench) {
            let mut next = record.clone();
            if next.on_ack(ack, now) {
                plan.put(next);
            }
        }
        plan.finish()
    }

    /// The running version a bench reported in its status.
    pub fn plan_reported(&self, bench: &BenchId, version: u64, now: DateTime<Utc>) -> Plan {
        let mut plan = Plan::new(now);
        if let Some(record) = self.benches.get(bench) {
            let mut next = record.clone();
            if next.on_reported(version, now) {
                plan.put(next);
            }
        }
        plan.finish()
    }

    fn rollout(&self, id: &str) -> Result<&Rollout, OtaError> {
        self.rollouts
            .get(id)
            .ok_or_else(|| OtaError::UnknownRollout(id.to_owned()))
    }

    /// Pause or resume.
    pub fn plan_pause(
        &self,
        id: &str,
        pause: bool,
        actor: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(Plan, Rollout), OtaError> {
        let mut rollout = self.rollout(id)?.clone();
        let done = if pause { rollout.pause(now) } else { rollout.resume(now) };
        if !done {
            return Err(OtaError::Conflict(format!(
                "rollout {id} is {}; cannot {}",
                rollout.state.as_str(),
                if pause { "pause it" } else { "resume it" }
            )));
        }
        let mut plan = Plan::new(now);
        let action = if pause { "rollout.pause" } else { "rollout.resume" };
        plan.audit(actor, action, id, json!({ "reason": reason }));
        plan.write.rollouts.push(rollout.clone());
        Ok((plan.finish(), rollout))
    }

    /// Operator abort: benches the rollout reached get their previous configuration back.
    pub fn plan_abort(
        &self,
        id: &str,
        actor: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(Plan, Rollout), OtaError> {
        let mut rollout = self.rollout(id)?.clone();
        let why = match reason {
            Some(r) => format!("aborted by {actor}: {r}"),
            None => format!("aborted by {actor}"),
        };
        let actions = rollout.abort(now, why).ok_or_else(|| {
            OtaError::Conflict(format!("rollout {id} is {}; cannot abort it", rollout.state.as_str()))
        })?;
        let mut plan = Plan::new(now);
        self.carry_out(&mut plan, &mut rollout, actions, actor);
        plan.audit(
            actor,
            "rollout.abort",
            id,
            json!({"reason": rollout.reason, "rolled_back": rolled_back(&rollout)}),
        );
        plan.write.rollouts.push(rollout.clone());
        Ok((plan.finish(), rollout))
    }

    /// Undoes a completed rollout: its layers go back to what they were, and every bench that
    /// changes gets a new version at once.
    pub fn plan_rollback(
        &self,
        id: &str,
        actor: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(Plan, Rollout), OtaError> {
        let mut rollout = self.rollout(id)?.clone();
        if rollout.state != RolloutState::Completed {
            return Err(OtaError::Conflict(format!(
                "rollout {id} is {}; only a completed rollout can be rolled back",
                rollout.state.as_str()
            )));
        }
        if let Some(active) = self.active_rollout() {
            return Err(OtaError::Conflict(format!(
                "rollout {} is {}; one rollout at a time",
                active.id,
                active.state.as_str()
            )));
        }
        for l in &rollout.after {
            if self.layers.get(&l.layer).cloned().unwrap_or_default() != l.content {
                return Err(OtaError::Conflict(format!(
                    "layer {} has changed since rollout {id}; change it directly instead",
                    l.layer
                )));
            }
        }
        let mut layers = self.layers.clone();
        let mut plan = Plan::new(now);
        for l in &rollout.before {
            layers.set(l.layer.clone(), l.content.clone());
            plan.write.layers.push(LayerRecord {
                layer: l.layer.clone(),
                content: l.content.clone(),
                updated_at: now,
                updated_by: actor.to_owned(),
            });
        }
        let invalid = self.reconcile(&mut plan, &layers, &BTreeSet::new(), "rollback", actor);
        if let Some((bench, errors)) = invalid.into_iter().next() {
            return Err(OtaError::Invalid(
                errors
                    .into_iter()
                    .map(|f| FieldError {
                        message: format!("{} (in the effective configuration of {bench})", f.message),
                        ..f
                    })
                    .collect(),
            ));
        }
        rollout.state = RolloutState::RolledBack;
        rollout.reason = Some(match reason {
            Some(r) => format!("rolled back by {actor}: {r}"),
            None => format!("rolled back by {actor}"),
        });
        rollout.updated_at = now;
        let issued: Vec<Value> = plan
            .write
            .versions
            .iter()
            .map(|v| json!({"bench": v.bench_id, "version": v.version}))
            .collect();
        plan.audit(
            actor,
            "rollout.rollback",
            id,
            json!({"reason": rollout.reason, "layers": rollout.before, "issued": issued}),
        );
        plan.write.rollouts.push(rollout.clone());
        Ok((plan.finish(), rollout))
    }
}

/// What a rollout request resolves to.
struct RolloutChange {
    before: Vec<LayerContent>,
    after: Vec<LayerContent>,
    affected: Vec<(BenchId, BenchConfig, BenchDiff)>,
}

fn to_json(config: &BenchConfig) -> Value {
    serde_json::to_value(config).unwrap_or_default()
}

fn rolled_back(rollout: &Rollout) -> Vec<Value> {
    rollout
        .benches
        .iter()
        .filter_map(|p| p.rollback_version.map(|v| json!({"bench": p.bench, "version": v})))
        .collect()
}

fn counts(rollout: &Rollout) -> Value {
    let counts: BTreeMap<String, usize> = rollout
        .counts()
        .into_iter()
        .map(|(k, v)| {
            (
                serde_json::to_value(k)
                    .ok()
                    .and_then(|s| s.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                v,
            )
        })
        .collect();
    json!(counts)
}

/// Whether a tick changed more than the rollout's `updated_at`.
fn rollout_changed(before: &Rollout, after: &Rollout) -> bool {
    let mut a = before.clone();
    a.updated_at = after.updated_at;
    a != *after
}
