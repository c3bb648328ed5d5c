//! Staged rollouts: a configuration change reaches the affected benches step by step (canary
//! benches first, then batches), each step gated on acknowledgements and health, with automatic
//! rollback when too many of a step's benches fail.
//!
//! Per step: every bench gets the new version at once. A bench that is not online when its step
//! starts is `skipped`: it was sent the change (retained) and applies it when it returns, but
//! the rollout does not wait for it. An online bench must acknowledge `applied` within the step
//! timeout and then stay healthy — online, no more faults than when the step began — for the
//! soak time. Rejected, timed-out and unhealthy benches are failures; when the failures exceed
//! `max_failure_ratio` of the step's benches the rollout aborts and every bench it reached is
//! sent its previous configuration as a new version.
//!
//! [`Rollout`] is a pure state machine: [`Rollout::tick`] takes the time and what the control
//! plane observes and returns [`Action`]s for the caller to carry out.

use chrono::{DateTime, TimeDelta, Utc};
use protocol::config::BenchConfig;
pub use protocol::ota::{LayerContent, RolloutRequest, Strategy, Target};
use protocol::{BenchId, BenchState};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::delivery::DeliveryState;

/// The life of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    Running,
    Paused,
    /// Every step passed; the change is part of the layers.
    Completed,
    /// Stopped by an operator or a health gate; the benches it reached got their previous
    /// configuration back.
    Aborted,
    /// Completed, then undone by an operator.
    RolledBack,
}

impl RolloutState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Aborted => "aborted",
            Self::RolledBack => "rolled_back",
        }
    }

    /// Running or paused: it holds its benches.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Running | Self::Paused)
    }
}

/// Where one bench stands in a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    /// Its step has not started.
    Waiting,
    /// Sent the change, waiting for its acknowledgement.
    Pending,
    /// Applied; must stay healthy for the soak time.
    Soaking,
    /// Applied and stayed healthy.
    Healthy,
    /// Offline or asleep when its step ran: sent the change, not waited for.
    Skipped,
    /// Failure: the bench refused the change.
    Rejected,
    /// Failure: no acknowledgement within the step timeout.
    TimedOut,
    /// Failure: went offline or reported new faults while soaking.
    Unhealthy,
    /// Sent its previous configuration back when the rollout aborted.
    RolledBack,
}

impl Progress {
    fn is_failure(self) -> bool {
        matches!(self, Self::Rejected | Self::TimedOut | Self::Unhealthy)
    }

    fn is_settled(self) -> bool {
        self.is_failure() || matches!(self, Self::Healthy | Self::Skipped)
    }
}

/// One bench in a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchProgress {
    pub bench: BenchId,
    /// Index of its step.
    pub step: usize,
    pub state: Progress,
    /// Its desired configuration before the rollout.
    pub from: BenchConfig,
    /// Its configuration with the change.
    pub to: BenchConfig,
    /// The version that carried `to`, once sent.
    pub version: Option<u64>,
    /// The version that carried `from` back, after an abort.
    pub rollback_version: Option<u64>,
    /// Active faults when its step began.
    pub baseline_faults: Option<u64>,
    /// When its soak began (online after applying).
    pub soak_since: Option<DateTime<Utc>>,
    /// When `state` was entered.
    pub at: DateTime<Utc>,
    /// Why, for failures, skips and rollbacks.
    pub detail: Option<String>,
}

/// A rollout and everything it did: the state in memory, and the JSON stored in
/// `ota_rollouts.body` (so its shape must stay readable; the API shows
/// [`protocol::ota::Rollout`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub note: Option<String>,
    pub target: Target,
    pub change: Value,
    pub strategy: Strategy,
    /// The targeted layers before and after the change.
    pub before: Vec<LayerContent>,
    pub after: Vec<LayerContent>,
    pub state: RolloutState,
    /// Why it was aborted or rolled back.
    pub reason: Option<String>,
    /// The current step (index) and the number of steps.
    pub step: usize,
    pub steps: usize,
    /// When the current step began; `None` before the first tick.
    pub step_started_at: Option<DateTime<Utc>>,
    pub paused_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Every affected bench, in step order.
    pub benches: Vec<BenchProgress>,
}

/// What the control plane sees of a bench, for the gates.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub presence: BenchState,
    /// Active faults in its newest telemetry, if any arrived.
    pub faults: Option<u64>,
    /// Its desired version and delivery state.
    pub desired_version: u64,
    pub delivery: DeliveryState,
    pub error: Option<String>,
}

/// What the caller must do for a rollout.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Issue `config` as the bench's next version, then call [`Rollout::issued`].
    Issue {
        bench: BenchId,
        config: BenchConfig,
        rollback: bool,
    },
    /// The rollout completed: write its `after` layers.
    Commit,
}

impl Rollout {
    /// A new running rollout; its first step starts at the first [`Rollout::tick`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        request: RolloutRequest,
        created_by: &str,
        before: Vec<LayerContent>,
        after: Vec<LayerContent>,
        affected: Vec<(BenchId, BenchConfig, BenchConfig)>,
        now: DateTime<Utc>,
    ) -> Self {
        let ids: Vec<BenchId> = affected.iter().map(|(b, _, _)| b.clone()).collect();
        let steps = request.strategy.steps(&ids);
        let mut benches = Vec::with_capacity(affected.len());
        for (step, members) in steps.iter().enumerate() {
            for bench in members {
                if let Some((_, from, to)) = affected.iter().find(|(b, _, _)| b == bench) {
                    benches.push(BenchProgress {
                        bench: bench.clone(),
                        step,
                        state: Progress::Waiting,
                        from: from.clone(),
                        to: to.clone(),
                        version: None,
                        rollback_version: None,
                        baseline_faults: None,
                        soak_since: None,
                        at: now,
                        detail: None,
                    });
                }
            }
        }
        Self {
            id,
            created_at: now,
            created_by: created_by.to_owned(),
            note: request.note,
            target: request.target,
            change: request.change,
            strategy: request.strategy,
            before,
            after,
            state: RolloutState::Running,
            reason: None,
            step: 0,
            steps: steps.len(),
            step_started_at: None,
            paused_at: None,
            updated_at: now,
            finished_at: None,
            benches,
        }
    }

    /// Whether `bench` is part of this rollout.
    pub fn holds(&self, bench: &BenchId) -> bool {
        self.state.is_active() && self.benches.iter().any(|p| p.bench == *bench)
    }

    /// Records the version an [`Action::Issue`] produced.
    pub fn issued(&mut self, bench: &BenchId, version: u64, rollback: bool) {
        if let Some(p) = self.benches.iter_mut().find(|p| p.bench == *bench) {
            if rollback {
                p.rollback_version = Some(version);
            } else {
                p.version = Some(version);
            }
        }
    }

    /// Advances the rollout: starts steps, applies the gates, completes or aborts.
    pub fn tick(&mut self, now: DateTime<Utc>, observe: &dyn Fn(&BenchId) -> Option<Observed>) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.state != RolloutState::Running {
            return actions;
        }
        if self.step_started_at.is_none() {
            self.begin_step(now, observe, &mut actions);
        }
        // A step can settle at once (every bench skipped), so loop over steps.
        while self.state == RolloutState::Running {
            self.watch_step(now, observe);
            let (size, failed, settled) = self.step_counts();
            if failed as f64 > self.strategy.max_failure_ratio * size as f64 {
                let reason = self.failure_reason(failed, size);
                self.abort_with(now, reason, &mut actions);
            } else if settled == size {
                if self.step + 1 < self.steps {
                    self.step += 1;
                    self.begin_step(now, observe, &mut actions);
                } else {
                    self.state = RolloutState::Completed;
                    self.finished_at = Some(now);
                    actions.push(Action::Commit);
                }
            } else {
                break;
            }
        }
        self.updated_at = now;
        actions
    }

    /// Stops advancing; acknowledgements keep being recorded per bench.
    pub fn pause(&mut self, now: DateTime<Utc>) -> bool {
        if self.state != RolloutState::Running {
            return false;
        }
        self.state = RolloutState::Paused;
        self.paused_at = Some(now);
        self.updated_at = now;
        true
    }

    /// Continues a paused rollout; the time spent paused does not count against the step.
    pub fn resume(&mut self, now: DateTime<Utc>) -> bool {
        if self.state != RolloutState::Paused {
            return false;
        }
        let paused = self.paused_at.map_or(TimeDelta::zero(), |at| now - at);
        self.step_started_at = self.step_started_at.map(|t| t + paused);
        for p in &mut self.benches {
            p.soak_since = p.soak_since.map(|t| t + paused);
        }
        self.state = RolloutState::Running;
        self.paused_at = None;
        self.updated_at = now;
        true
    }

    /// Aborts a running or paused rollout; returns the rollback issues.
    pub fn abort(&mut self, now: DateTime<Utc>, reason: String) -> Option<Vec<Action>> {
        if !self.state.is_active() {
            return None;
        }
        let mut actions = Vec::new();
        self.abort_with(now, reason, &mut actions);
        self.updated_at = now;
        Some(actions)
    }

    /// After a control-plane restart every bench is offline until it reconnects: restart the
    /// clocks of the current step and wait for soaking benches to come back before soaking again.
    pub fn restore(&mut self, now: DateTime<Utc>) {
        if !self.state.is_active() || self.step_started_at.is_none() {
            return;
        }
        self.step_started_at = Some(now);
        if self.state == RolloutState::Paused {
            self.paused_at = Some(now);
        }
        for p in &mut self.benches {
            if p.state == Progress::Soaking {
                p.soak_since = None;
            }
        }
    }

    /// Bench counts by progress state, for summaries.
    pub fn counts(&self) -> std::collections::BTreeMap<Progress, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for p in &self.benches {
            *counts.entry(p.state).or_default() += 1;
        }
        counts
    }

    fn begin_step(
        &mut self,
        now: DateTime<Utc>,
        observe: &dyn Fn(&BenchId) -> Option<Observed>,
        actions: &mut Vec<Action>,
    ) {
        self.step_started_at = Some(now);
        let step = self.step;
        for p in self.benches.iter_mut().filter(|p| p.step == step) {
            let seen = observe(&p.bench);
            let presence = seen.as_ref().map_or(BenchState::NeverSeen, |o| o.presence);
            if presence == BenchState::Online {
                p.baseline_faults = seen.and_then(|o| o.faults);
                set(p, Progress::Pending, None, now);
            } else {
                let detail = format!("{presence} when its step began; it applies the change when it returns");
                set(p, Progress::Skipped, Some(detail), now);
            }
            actions.push(Action::Issue {
                bench: p.bench.clone(),
                config: p.to.clone(),
                rollback: false,
            });
        }
    }

    fn watch_step(&mut self, now: DateTime<Utc>, observe: &dyn Fn(&BenchId) -> Option<Observed>) {
        let step = self.step;
        let elapsed = self.step_started_at.map_or(TimeDelta::zero(), |t| now - t);
        let timeout = TimeDelta::seconds(i64::try_from(self.strategy.step_timeout_s).unwrap_or(i64::MAX));
        let timed_out = elapsed > timeout;
        let soak = TimeDelta::seconds(i64::try_from(self.strategy.soak_s).unwrap_or(i64::MAX));
        for p in self.benches.iter_mut().filter(|p| p.step == step) {
            let Some(seen) = observe(&p.bench) else {
                continue;
            };
            if p.state == Progress::Pending {
                let ours = p.version.is_some_and(|v| v == seen.desired_version);
                match seen.delivery {
                    DeliveryState::Applied if ours => set(p, Progress::Soaking, None, now),
                    DeliveryState::Rejected if ours => {
                        let why = seen.error.clone().unwrap_or_else(|| "rejected".into());
                        set(p, Progress::Rejected, Some(why), now);
                    }
                    _ if timed_out => {
                        let detail = format!("no acknowledgement within {}s", self.strategy.step_timeout_s);
                        set(p, Progress::TimedOut, Some(detail), now);
                    }
                    _ => {}
                }
            }
            if p.state == Progress::Soaking {
                match seen.presence {
                    BenchState::Online => {
                        let since = *p.soak_since.get_or_insert(now);
                        let baseline = *p.baseline_faults.get_or_insert(seen.faults.unwrap_or(0));
                        let faults = seen.faults.unwrap_or(0);
                        if faults > baseline {
                            let detail = format!("active faults rose from {baseline} to {faults} while soaking");
                            set(p, Progress::Unhealthy, Some(detail), now);
                        } else if now - since >= soak {
                            set(p, Progress::Healthy, None, now);
                        }
                    }
                    BenchState::Sleeping => {
                        let detail = "went to sleep while soaking; not waited for".to_owned();
                        set(p, Progress::Skipped, Some(detail), now);
                    }
                    other if p.soak_since.is_some() => {
                        let detail = format!("went {other} while soaking");
                        set(p, Progress::Unhealthy, Some(detail), now);
                    }
                    other if timed_out => {
                        let detail = format!("still {other} at the step timeout");
                        set(p, Progress::Unhealthy, Some(detail), now);
                    }
                    _ => {}
                }
            }
        }
    }

    /// (benches in the step, failed, settled)
    fn step_counts(&self) -> (usize, usize, usize) {
        let members = self.benches.iter().filter(|p| p.step == self.step);
        members.fold((0, 0, 0), |(n, f, s), p| {
            (
                n + 1,
                f + usize::from(p.state.is_failure()),
                s + usize::from(p.state.is_settled()),
            )
        })
    }

    fn failure_reason(&self, failed: usize, size: usize) -> String {
        let name = if self.step == 0 && !self.strategy.canary.is_empty() {
            "canary step".to_owned()
        } else {
            format!("step {} of {}", self.step + 1, self.steps)
        };
        let failures: Vec<String> = self
            .benches
            .iter()
            .filter(|p| p.step == self.step && p.state.is_failure())
            .map(|p| {
                let state = serde_json::to_value(p.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                match &p.detail {
                    Some(d) => format!("{} {state} ({d})", p.bench),
                    None => format!("{} {state}", p.bench),
                }
            })
            .collect();
        format!(
            "{name}: {failed} of {size} benches failed, more than the allowed {:.0}%: {}",
            self.strategy.max_failure_ratio * 100.0,
            failures.join("; ")
        )
    }

    fn abort_with(&mut self, now: DateTime<Utc>, reason: String, actions: &mut Vec<Action>) {
        self.state = RolloutState::Aborted;
        self.reason = Some(reason);
        self.finished_at = Some(now);
        for p in &mut self.benches {
            if p.version.is_some() || p.state != Progress::Waiting {
                let was = serde_json::to_value(p.state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let detail = match &p.detail {
                    Some(d) => format!("was {was}: {d}"),
                    None => format!("was {was}"),
                };
                set(p, Progress::RolledBack, Some(detail), now);
                actions.push(Action::Issue {
                    bench: p.bench.clone(),
                    config: p.from.clone(),
                    rollback: true,
                });
            }
        }
    }
}

fn set(p: &mut BenchProgress, state: Progress, detail: Option<String>, now: DateTime<Utc>) {
    p.state = state;
    p.detail = detail;
    p.at = now;
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn id(s: &str) -> BenchId {
        BenchId::parse(s).unwrap()
    }

    /// A fake fleet: presence, faults and delivery per bench, changed by the test.
    #[derive(Default)]
    struct World(RefCell<HashMap<String, Observed>>);

    impl World {
        fn online(names: &[&str]) -> Self {
            let w = Self::default();
            for n in names {
                w.0.borrow_mut().insert(
                    (*n).to_owned(),
                    Observed {
                        presence: BenchState::Online,
                        faults: Some(0),
                        desired_version: 1,
                        delivery: DeliveryState::Applied,
                        error: None,
                    },
                );
            }
            w
        }

        fn with(&self, bench: &str, f: impl FnOnce(&mut Observed)) {
            f(self.0.borrow_mut().get_mut(bench).unwrap());
        }

        fn observe(&self) -> impl Fn(&BenchId) -> Option<Observed> + '_ {
            |b| self.0.borrow().get(b.as_str()).cloned()
        }

        /// Carries out the actions like the engine: issuing bumps the desired version.
        fn run(&self, r: &mut Rollout, actions: &[Action]) {
            for a in actions {
                if let Action::Issue { bench, rollback, .. } = a {
                    let mut v = 0;
                    self.with(bench.as_str(), |o| {
                        o.desired_version += 1;
                        o.delivery = DeliveryState::Pending;
                        v = o.desired_version;
                    });
                    r.issued(bench, v, *rollback);
                }
            }
        }

        fn tick(&self, r: &mut Rollout, now: DateTime<Utc>) -> Vec<Action> {
            let actions = r.tick(now, &self.observe());
            self.run(r, &actions);
            actions
        }
    }

    fn rollout(benches: &[&str], strategy: Strategy) -> Rollout {
        let mut to = BenchConfig::default();
        to.wifi.ssid = "New".into();
        let affected = benches
            .iter()
            .map(|b| (id(b), BenchConfig::default(), to.clone()))
            .collect();
        let request = RolloutRequest {
            target: Target::Fleet,
            change: serde_json::json!({"wifi": {"ssid": "New"}}),
            strategy,
            note: None,
        };
        Rollout::new("r1".into(), request, "ops", Vec::new(), Vec::new(), affected, t(0))
    }

    fn states(r: &Rollout) -> Vec<(&str, Progress)> {
        r.benches.iter().map(|p| (p.bench.as_str(), p.state)).collect()
    }

    fn issued(actions: &[Action]) -> Vec<(&str, bool)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Issue { bench, rollback, .. } => Some((bench.as_str(), *rollback)),
                Action::Commit => None,
            })
            .collect()
    }

    #[test]
    fn steps_put_the_canary_first() {
        let s = Strategy {
            canary: vec![id("c")],
            batch_size: Some(2),
            ..Strategy::default()
        };
        let all = [id("a"), id("b"), id("c"), id("d"), id("e")];
        assert_eq!(
            s.steps(&all),
            [vec![id("c")], vec![id("a"), id("b")], vec![id("d"), id("e")]]
        );
        assert_eq!(Strategy::default().steps(&all).len(), 1);
        let bad = Strategy {
            canary: vec![id("x")],
            batch_size: Some(0),
            max_failure_ratio: 1.5,
            ..Strategy::default()
        };
        let fields: Vec<String> = bad.validate(&all).into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["strategy.canary", "strategy.batch_size", "strategy.max_failure_ratio"]
        );
    }

    #[test]
    fn a_healthy_rollout_goes_step_by_step_and_commits() {
        let w = World::online(&["a", "b", "c"]);
        let mut r = rollout(
            &["a", "b", "c"],
            Strategy {
                canary: vec![id("b")],
                batch_size: Some(5),
                soak_s: 10,
                ..Strategy::default()
            },
        );
        let a = w.tick(&mut r, t(0));
        assert_eq!(issued(&a), [("b", false)]);
        assert_eq!(
            states(&r),
            [
                ("b", Progress::Pending),
                ("a", Progress::Waiting),
                ("c", Progress::Waiting)
            ]
        );
        w.with("b", |o| o.delivery = DeliveryState::Applied);
        assert!(w.tick(&mut r, t(2)).is_empty());
        assert_eq!(r.benches[0].state, Progress::Soaking);
        assert!(w.tick(&mut r, t(11)).is_empty(), "soak not over");
        let a = w.tick(&mut r, t(12));
        assert_eq!(issued(&a), [("a", false), ("c", false)]);
        assert_eq!((r.step, r.benches[0].state), (1, Progress::Healthy));
        w.with("a", |o| o.delivery = DeliveryState::Applied);
        w.with("c", |o| o.delivery = DeliveryState::Applied);
        w.tick(&mut r, t(13));
        let a = w.tick(&mut r, t(23));
        assert_eq!(a, [Action::Commit]);
        assert_eq!((r.state, r.finished_at), (RolloutState::Completed, Some(t(23))));
    }

    #[test]
    fn a_rejecting_canary_aborts_and_rolls_back() {
        let w = World::online(&["a", "b"]);
        let mut r = rollout(
            &["a", "b"],
            Strategy {
                canary: vec![id("a")],
                ..Strategy::default()
            },
        );
        w.tick(&mut r, t(0));
        w.with("a", |o| {
            o.delivery = DeliveryState::Rejected;
            o.error = Some("bad ssid".into());
        });
        let a = w.tick(&mut r, t(1));
        assert_eq!(issued(&a), [("a", true)]);
        assert_eq!(r.state, RolloutState::Aborted);
        let reason = r.reason.clone().unwrap();
        assert!(
            reason.starts_with("canary step: 1 of 1 benches failed") && reason.contains("a rejected (bad ssid)"),
            "{reason}"
        );
        assert_eq!(states(&r), [("a", Progress::RolledBack), ("b", Progress::Waiting)]);
        assert_eq!(
            (r.benches[0].version, r.benches[0].rollback_version),
            (Some(2), Some(3))
        );
        assert_eq!(r.benches[0].detail.as_deref(), Some("was rejected: bad ssid"));
    }

    #[test]
    fn offline_benches_are_skipped_and_the_threshold_decides() {
        let w = World::online(&["a", "b", "c", "d"]);
        w.with("d", |o| o.presence = BenchState::Offline);
        let strategy = Strategy {
            soak_s: 5,
            max_failure_ratio: 0.25,
            ..Strategy::default()
        };
        let mut r = rollout(&["a", "b", "c", "d"], strategy.clone());
        let a = w.tick(&mut r, t(0));
        assert_eq!(issued(&a).len(), 4, "offline benches are sent the change too");
        assert_eq!(r.benches[3].state, Progress::Skipped);
        for b in ["a", "b", "c"] {
            w.with(b, |o| o.delivery = DeliveryState::Applied);
        }
        w.tick(&mut r, t(1));
        // One of four goes offline while soaking: 25 % is not more than 25 %.
        w.with("c", |o| o.presence = BenchState::Offline);
        w.tick(&mut r, t(2));
        assert_eq!(r.benches[2].state, Progress::Unhealthy);
        assert_eq!(r.state, RolloutState::Running);
        assert_eq!(w.tick(&mut r, t(6)), [Action::Commit]);

        // The same with a stricter threshold aborts, rolling back all four (d included).
        let w = World::online(&["a", "b", "c", "d"]);
        w.with("d", |o| o.presence = BenchState::Offline);
        let mut r = rollout(
            &["a", "b", "c", "d"],
            Strategy {
                max_failure_ratio: 0.2,
                ..strategy
            },
        );
        w.tick(&mut r, t(0));
        for b in ["a", "b", "c"] {
            w.with(b, |o| o.delivery = DeliveryState::Applied);
        }
        w.tick(&mut r, t(1));
        w.with("c", |o| o.presence = BenchState::Offline);
        let a = w.tick(&mut r, t(2));
        assert_eq!(r.state, RolloutState::Aborted);
        assert_eq!(issued(&a), [("a", true), ("b", true), ("c", true), ("d", true)]);
        assert!(r.reason.unwrap().contains("c unhealthy (went offline while soaking)"));
    }

    #[test]
    fn silence_times_out_and_new_faults_are_unhealthy() {
        let w = World::online(&["a", "b"]);
        let mut r = rollout(
            &["a", "b"],
            Strategy {
                step_timeout_s: 30,
                soak_s: 60,
                max_failure_ratio: 1.0,
                ..Strategy::default()
            },
        );
        w.tick(&mut r, t(0));
        w.with("b", |o| o.delivery = DeliveryState::Applied);
        w.tick(&mut r, t(1));
        w.with("b", |o| o.faults = Some(1));
        w.tick(&mut r, t(2));
        assert_eq!(r.benches[1].state, Progress::Unhealthy);
        assert!(w.tick(&mut r, t(30)).is_empty());
        // With every bench failed and a ratio of 1, the step still counts as passed.
        assert_eq!(w.tick(&mut r, t(31)), [Action::Commit]);
        assert_eq!(r.benches[0].state, Progress::TimedOut);
    }

    #[test]
    fn pause_stops_the_clock_and_restore_waits_for_reconnects() {
        let w = World::online(&["a"]);
        let mut r = rollout(
            &["a"],
            Strategy {
                soak_s: 10,
                step_timeout_s: 20,
                ..Strategy::default()
            },
        );
        w.tick(&mut r, t(0));
        assert!(r.pause(t(5)));
        assert!(w.tick(&mut r, t(100)).is_empty());
        assert!(r.resume(t(105)));
        assert_eq!(r.step_started_at, Some(t(100)));
        w.with("a", |o| o.delivery = DeliveryState::Applied);
        w.tick(&mut r, t(110));
        assert_eq!(r.benches[0].state, Progress::Soaking);

        // Restart: everyone offline for a moment; that is not a failure.
        r.restore(t(200));
        w.with("a", |o| o.presence = BenchState::Offline);
        w.tick(&mut r, t(201));
        assert_eq!(
            (r.state, r.benches[0].state),
            (RolloutState::Running, Progress::Soaking)
        );
        w.with("a", |o| o.presence = BenchState::Online);
        w.tick(&mut r, t(202));
        assert_eq!(r.benches[0].soak_since, Some(t(202)));
        assert_eq!(w.tick(&mut r, t(212)), [Action::Commit]);
    }

    #[test]
    fn operator_abort() {
        let w = World::online(&["a", "b"]);
        let mut r = rollout(
            &["a", "b"],
            Strategy {
                batch_size: Some(1),
                ..Strategy::default()
            },
        );
        w.tick(&mut r, t(0));
        let a = r.abort(t(1), "aborted by ops".into()).unwrap();
        assert_eq!(issued(&a), [("a", true)]);
        assert_eq!(r.state, RolloutState::Aborted);
        assert!(r.abort(t(2), "again".into()).is_none());
        assert!(!r.pause(t(2)));
    }
}
