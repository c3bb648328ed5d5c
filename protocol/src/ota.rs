//! Over-the-air configuration as the HTTP API shows and accepts it: configuration layers, every
//! bench's desired/reported configuration, staged rollouts and their per-bench progress.
//!
//! These are views: the control plane keeps its own state (and stores it in its own shape) and
//! converts. Clients read them tolerantly: unknown fields are ignored, and a state added by a
//! newer server reads as `Other` instead of failing the whole answer.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::{BenchConfig, FieldError};
use crate::fleet::BenchInfo;
use crate::topic::BenchId;

/// Where a configuration layer applies. Ordered from least to most specific.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "scope", content = "name", rename_all = "snake_case")]
pub enum Scope {
    /// Every bench: the fleet default.
    Fleet,
    /// The benches of one municipality (as spelled in the registry, e.g. `Žepče`).
    Municipality(String),
    /// One bench.
    Bench(BenchId),
}

impl Scope {
    /// `fleet`, `municipality` or `bench`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Fleet => "fleet",
            Self::Municipality(_) => "municipality",
            Self::Bench(_) => "bench",
        }
    }

    /// The municipality or bench id; empty for the fleet.
    pub fn name(&self) -> &str {
        match self {
            Self::Fleet => "",
            Self::Municipality(m) => m,
            Self::Bench(b) => b.as_str(),
        }
    }

    /// The inverse of [`Scope::kind`] and [`Scope::name`].
    pub fn from_parts(kind: &str, name: &str) -> Option<Self> {
        match kind {
            "fleet" => Some(Self::Fleet),
            "municipality" => Some(Self::Municipality(name.to_owned())),
            "bench" => BenchId::parse(name).ok().map(Self::Bench),
            _ => None,
        }
    }

    /// Whether this layer is part of `bench`'s configuration.
    pub fn applies_to(&self, bench: &BenchInfo) -> bool {
        match self {
            Self::Fleet => true,
            Self::Municipality(m) => *m == bench.municipality,
            Self::Bench(b) => *b == bench.id,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fleet => f.write_str("fleet"),
            other => write!(f, "{}:{}", other.kind(), other.name()),
        }
    }
}

/// One configuration layer (`GET /api/v1/ota/layers`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Layer {
    pub layer: Scope,
    /// The partial configuration.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub content: Map<String, Value>,
    pub updated_at: DateTime<Utc>,
    /// A token subject, or `system`.
    pub updated_by: String,
}

/// One layer's content, as a rollout records it before and after its change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LayerContent {
    pub layer: Scope,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub content: Map<String, Value>,
}

/// `PUT /api/v1/ota/layers`: replace one layer, or preview it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetLayer {
    /// Which layer: `{"scope":"fleet"}`, `{"scope":"municipality","name":"Mostar"}` or
    /// `{"scope":"bench","name":"mostar-01"}`.
    pub layer: Scope,
    /// The layer's new content, a partial configuration; `{}` removes the layer.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub content: Value,
    /// Only report what would change.
    #[serde(default)]
    pub dry_run: bool,
}

/// One field that differs between two configurations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldChange {
    /// Dotted path, e.g. `wifi.ssid`.
    pub field: String,
    /// The value before; absent when the field was not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Value>,
    /// The value after; absent when the field is no longer set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Value>,
}

/// What a change would do to one bench.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BenchDiff {
    pub bench: BenchId,
    /// The bench's desired version now (0: none yet).
    pub version: u64,
    pub changes: Vec<FieldChange>,
}

/// What a layer change did (or would do), per bench whose configuration changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LayerChange {
    pub dry_run: bool,
    pub benches: Vec<BenchDiff>,
}

/// A bench's effective configuration and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EffectiveConfig {
    pub bench: BenchId,
    pub config: BenchConfig,
    /// The layers that contribute, least specific first.
    pub layers: Vec<Scope>,
    /// The bench's desired version, and whether its content is this effective configuration
    /// (it differs while a rollout holds the bench).
    pub desired_version: Option<u64>,
    pub matches_desired: bool,
}

/// Where delivery of a bench's desired configuration version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Issued and published (retained); the bench has not been connected since.
    Pending,
    /// The bench has been connected since it was issued; no acknowledgement yet.
    Delivered,
    /// The bench acknowledged it as applied (or reports running it).
    Applied,
    /// The bench refused it and runs its previous configuration.
    Rejected,
    /// Delivered, but not acknowledged within the acknowledgement timeout.
    TimedOut,
    /// A state this client does not know (never sent).
    #[serde(other, skip_serializing)]
    Other,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Applied => "applied",
            Self::Rejected => "rejected",
            Self::TimedOut => "timed_out",
            Self::Other => "unknown",
        }
    }
}

/// One bench's desired and reported configuration version, delivery and drift
/// (`GET /api/v1/ota/benches` items and the `bench_config` live event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BenchConfigStatus {
    pub bench_id: BenchId,
    /// The version the bench should run; increases by one per change, starting at 1.
    pub desired_version: u64,
    /// Its content.
    pub desired: BenchConfig,
    /// When the desired version was issued.
    pub issued_at: DateTime<Utc>,
    pub state: DeliveryState,
    /// When `state` was entered.
    pub state_at: DateTime<Utc>,
    /// The version the bench last said it runs (acknowledgement or status), if it ever did.
    pub reported_version: Option<u64>,
    /// When the bench first reported `reported_version`.
    pub reported_at: Option<DateTime<Utc>>,
    /// The bench's reason for the last rejection of the desired version.
    pub error: Option<String>,
    /// Since when desired and reported differ; `None` while they agree.
    pub drift_since: Option<DateTime<Utc>>,
    /// The rollout that issued the desired version, if any.
    pub rollout_id: Option<String>,
    /// Seconds desired and reported have differed (0 in sync).
    pub drift_seconds: u64,
    /// Whether they have differed for longer than the control plane's drift threshold.
    pub drifting: bool,
}

/// One issued configuration version of a bench.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IssuedVersion {
    pub bench_id: BenchId,
    pub version: u64,
    pub config: BenchConfig,
    pub issued_at: DateTime<Utc>,
    /// Why: `initial`, `layer`, `rollout`, `rollback`, `reconcile`.
    pub cause: String,
    /// Who: a token subject, or `system`.
    pub actor: String,
    pub rollout_id: Option<String>,
}

/// One bench's configuration (`GET /api/v1/ota/benches/{id}`): delivery state, effective
/// configuration, recent versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BenchOta {
    pub status: BenchConfigStatus,
    pub effective: EffectiveConfig,
    /// The newest issued versions, newest first (at most 20).
    pub versions: Vec<IssuedVersion>,
}

/// What an operator asks for (`POST /api/v1/rollouts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RolloutRequest {
    /// Which layers the change is written to (and so which benches it can reach).
    pub target: Target,
    /// An RFC 7396 merge patch applied to each targeted layer: fields set, `null` removes an
    /// override so the bench inherits the value again.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub change: Value,
    #[serde(default)]
    pub strategy: Strategy,
    /// Free text for the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The layers a rollout writes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The fleet default layer.
    Fleet,
    /// These municipalities' layers.
    Municipalities(Vec<String>),
    /// These benches' own layers.
    Benches(Vec<BenchId>),
}

impl Target {
    pub fn scopes(&self) -> Vec<Scope> {
        match self {
            Self::Fleet => vec![Scope::Fleet],
            Self::Municipalities(m) => m.iter().cloned().map(Scope::Municipality).collect(),
            Self::Benches(b) => b.iter().cloned().map(Scope::Bench).collect(),
        }
    }
}

/// In a few words: `fleet`, `municipalities Mostar, Ravno`, `benches mostar-01, ravno-01`.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |kind: &str, names: Vec<&str>| format!("{kind} {}", names.join(", "));
        match self {
            Self::Fleet => f.write_str("fleet"),
            Self::Municipalities(m) => f.write_str(&list("municipalities", m.iter().map(String::as_str).collect())),
            Self::Benches(b) => f.write_str(&list("benches", b.iter().map(BenchId::as_str).collect())),
        }
    }
}

/// How a rollout proceeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
pub struct Strategy {
    /// Benches that go first, as a step of their own. They must be among the affected benches.
    pub canary: Vec<BenchId>,
    /// Benches per step after the canary; absent: all of them in one step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// How long a bench must stay healthy after applying, seconds (0-86400).
    pub soak_s: u64,
    /// How long a step waits for acknowledgements before counting the silent benches as timed
    /// out, seconds (1-604800).
    pub step_timeout_s: u64,
    /// The share of a step's benches that may fail (0-1) before the rollout aborts and rolls back.
    /// 0: any failure aborts.
    pub max_failure_ratio: f64,
}

impl Default for Strategy {
    fn default() -> Self {
        Self {
            canary: Vec::new(),
            batch_size: None,
            soak_s: 60,
            step_timeout_s: 600,
            max_failure_ratio: 0.0,
        }
    }
}

impl Strategy {
    /// Checks values no type can express; `affected` are the benches the change reaches.
    pub fn validate(&self, affected: &[BenchId]) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if let Some(b) = self.canary.iter().find(|b| !affected.contains(b)) {
            errors.push(FieldError::new(
                "strategy.canary",
                format!("{b} is not among the benches this change affects"),
            ));
        }
        if self.batch_size == Some(0) {
            errors.push(FieldError::new("strategy.batch_size", "must be at least 1"));
        }
        if self.soak_s > 86_400 {
            errors.push(FieldError::new("strategy.soak_s", "must be 0-86400 seconds"));
        }
        if !(1..=604_800).contains(&self.step_timeout_s) {
            errors.push(FieldError::new("strategy.step_timeout_s", "must be 1-604800 seconds"));
        }
        if !(0.0..=1.0).contains(&self.max_failure_ratio) {
            errors.push(FieldError::new("strategy.max_failure_ratio", "must be 0-1"));
        }
        errors
    }

    /// Splits the affected benches (in id order) into steps: the canary first, then batches.
    pub fn steps(&self, affected: &[BenchId]) -> Vec<Vec<BenchId>> {
        let mut steps = Vec::new();
        let canary: Vec<BenchId> = affected.iter().filter(|b| self.canary.contains(b)).cloned().collect();
        if !canary.is_empty() {
            steps.push(canary);
        }
        let rest: Vec<BenchId> = affected.iter().filter(|b| !self.canary.contains(b)).cloned().collect();
        let size = self
            .batch_size
            .map_or(rest.len(), |n| usize::try_from(n).unwrap_or(usize::MAX))
            .max(1);
        steps.extend(rest.chunks(size).map(<[BenchId]>::to_vec));
        steps
    }
}

/// What a rollout would change (`POST /api/v1/rollouts?dry_run=true`); nothing is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutPreview {
    /// Bench ids per step, canary first.
    pub steps: Vec<Vec<BenchId>>,
    pub benches: Vec<BenchDiff>,
}

/// The life of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// A state this client does not know (never sent).
    #[serde(other, skip_serializing)]
    Other,
}

impl RolloutState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Aborted => "aborted",
            Self::RolledBack => "rolled_back",
            Self::Other => "unknown",
        }
    }

    /// Running or paused: it holds its benches (one at a time).
    pub fn is_active(self) -> bool {
        matches!(self, Self::Running | Self::Paused)
    }
}

/// Where one bench stands in a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// A state this client does not know (never sent).
    #[serde(other, skip_serializing)]
    Other,
}

impl Progress {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Pending => "pending",
            Self::Soaking => "soaking",
            Self::Healthy => "healthy",
            Self::Skipped => "skipped",
            Self::Rejected => "rejected",
            Self::TimedOut => "timed_out",
            Self::Unhealthy => "unhealthy",
            Self::RolledBack => "rolled_back",
            Self::Other => "unknown",
        }
    }

    /// The bench failed its step (these count against the rollout's failure ratio).
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Rejected | Self::TimedOut | Self::Unhealthy)
    }
}

/// One bench in a rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A rollout and everything it did (`GET /api/v1/rollouts/{id}` and the answer to a steering
/// action).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rollout {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub note: Option<String>,
    pub target: Target,
    /// The merge patch it rolls out.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
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

impl Rollout {
    /// Benches per progress state.
    pub fn counts(&self) -> BTreeMap<Progress, usize> {
        let mut counts = BTreeMap::new();
        for b in &self.benches {
            *counts.entry(b.state).or_insert(0) += 1;
        }
        counts
    }

    /// The rollout in brief, as lists show it.
    pub fn summary(&self) -> RolloutSummary {
        RolloutSummary {
            id: self.id.clone(),
            state: self.state,
            step: self.step,
            steps: self.steps,
            reason: self.reason.clone(),
            counts: self.counts(),
            created_by: self.created_by.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A rollout in brief (`GET /api/v1/rollouts` items and the `rollout` live event).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutSummary {
    pub id: String,
    pub state: RolloutState,
    /// The current step (index from 0) and the number of steps.
    pub step: usize,
    pub steps: usize,
    /// Why it was aborted or rolled back.
    pub reason: Option<String>,
    /// Benches per progress state.
    #[cfg_attr(feature = "openapi", schema(value_type = BTreeMap<String, usize>))]
    pub counts: BTreeMap<Progress, usize>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_read_with_extra_fields_and_unknown_states() {
        let summary: Vec<RolloutSummary> = serde_json::from_str(
            r#"[{"id":"r-1","state":"running","step":1,"steps":3,"reason":null,
                "counts":{"healthy":2,"pending":1,"quarantined":1},"created_by":"ana",
                "created_at":"2026-11-26T09:00:00Z","updated_at":"2026-11-26T09:30:00Z","extra":true}]"#,
        )
        .unwrap();
        assert_eq!(summary[0].state, RolloutState::Running);
        assert_eq!(summary[0].counts.get(&Progress::Healthy), Some(&2));
        assert_eq!(summary[0].counts.get(&Progress::Other), Some(&1));

        let config = serde_json::to_string(&BenchConfig::default()).unwrap();
        let status: BenchConfigStatus = serde_json::from_str(&format!(
            r#"{{"bench_id":"novi-grad-01","desired_version":7,"desired":{config},
                "issued_at":"2026-11-26T09:00:00Z","state":"delivered","state_at":"2026-11-26T09:01:00Z",
                "reported_version":6,"reported_at":"2026-11-20T09:00:00Z","error":null,
                "drift_since":"2026-11-26T09:00:00Z","rollout_id":"r-1","drift_seconds":3600,"drifting":true}}"#,
        ))
        .unwrap();
        assert_eq!(status.state, DeliveryState::Delivered);
        assert_eq!((status.desired_version, status.reported_version), (7, Some(6)));
        assert!(status.drifting);

        let rollout: Rollout = serde_json::from_str(&format!(
            r#"{{"id":"r-1","created_at":"2026-11-26T09:00:00Z","created_by":"ana","note":null,
                "target":{{"municipalities":["Mostar","Ravno"]}},"change":{{"sleep":{{"start":"23:00"}}}},
                "strategy":{{"canary":[],"soak_s":600,"step_timeout_s":900,"max_failure_ratio":0.2}},
                "before":[],"after":[],"state":"paused","reason":null,"step":0,"steps":2,
                "step_started_at":null,"paused_at":"2026-11-26T09:10:00Z","updated_at":"2026-11-26T09:10:00Z",
                "finished_at":null,"benches":[{{"bench":"mostar-01","step":0,"state":"soaking",
                "from":{config},"to":{config},"version":8,"rollback_version":null,"baseline_faults":0,
                "soak_since":"2026-11-26T09:05:00Z","at":"2026-11-26T09:05:00Z","detail":null}}]}}"#,
        ))
        .unwrap();
        assert_eq!(rollout.target.to_string(), "municipalities Mostar, Ravno");
        assert_eq!(rollout.benches[0].state, Progress::Soaking);
        assert_eq!(rollout.summary().counts.get(&Progress::Soaking), Some(&1));
    }

    #[test]
    fn targets_read_in_a_few_words() {
        let b = |s: &str| BenchId::parse(s).unwrap();
        assert_eq!(Target::Fleet.to_string(), "fleet");
        assert_eq!(
            Target::Benches(vec![b("mostar-01"), b("ravno-01")]).to_string(),
            "benches mostar-01, ravno-01"
        );
    }

    #[test]
    fn unknown_states_are_never_sent() {
        assert!(serde_json::to_value(Progress::Other).is_err());
        assert_eq!(serde_json::to_value(Progress::TimedOut).unwrap(), "timed_out");
        assert_eq!(serde_json::to_value(RolloutState::RolledBack).unwrap(), "rolled_back");
    }

    #[test]
    fn scopes_round_trip() {
        for s in [
            Scope::Fleet,
            Scope::Municipality("Žepče".into()),
            Scope::Bench(BenchId::parse("zepce-01").unwrap()),
        ] {
            assert_eq!(Scope::from_parts(s.kind(), s.name()), Some(s.clone()));
            let json = serde_json::to_value(&s).unwrap();
            assert_eq!(serde_json::from_value::<Scope>(json).unwrap(), s);
        }
        assert_eq!(
            serde_json::to_value(Scope::Fleet).unwrap(),
            serde_json::json!({"scope": "fleet"})
        );
        assert_eq!(
            serde_json::to_value(Scope::Municipality("Mostar".into())).unwrap(),
            serde_json::json!({"scope": "municipality", "name": "Mostar"})
        );
        assert_eq!(Scope::from_parts("bench", "Not Valid"), None);
    }
}
