//! The OTA routes as the console reads them: rollouts, their steering, and every bench's
//! configuration state. The control plane's own types live in `control-plane`, not in
//! `protocol`, so these are the console's minimal copies: they read only the fields shown and
//! ignore the rest, and a state added later reads as `Other` instead of failing the list.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{ApiError, Client};

/// The life of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutState {
    Running,
    Paused,
    Completed,
    Aborted,
    RolledBack,
    /// A state this console does not know.
    #[serde(other)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    Waiting,
    Pending,
    Soaking,
    Healthy,
    Skipped,
    Rejected,
    TimedOut,
    Unhealthy,
    RolledBack,
    #[serde(other)]
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

/// Where delivery of a bench's desired configuration version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Applied,
    Rejected,
    TimedOut,
    #[serde(other)]
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

/// `GET /api/v1/rollouts` items and the `rollout` live event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RolloutSummary {
    pub id: String,
    pub state: RolloutState,
    /// The current step (index from 0) and the number of steps.
    pub step: usize,
    pub steps: usize,
    /// Why it was aborted or rolled back.
    #[serde(default)]
    pub reason: Option<String>,
    /// Benches per progress state.
    #[serde(default)]
    pub counts: BTreeMap<Progress, usize>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One bench in a rollout.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BenchProgress {
    pub bench: String,
    /// Index of its step.
    pub step: usize,
    pub state: Progress,
    /// The version that carried the change, once sent.
    #[serde(default)]
    pub version: Option<u64>,
    /// The version that carried the previous configuration back, after an abort.
    #[serde(default)]
    pub rollback_version: Option<u64>,
    /// When `state` was entered.
    pub at: DateTime<Utc>,
    /// Why, for failures, skips and rollbacks.
    #[serde(default)]
    pub detail: Option<String>,
}

/// `GET /api/v1/rollouts/{id}` and the answer to a steering action.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Rollout {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    #[serde(default)]
    pub note: Option<String>,
    /// `"fleet"`, `{"municipalities":[…]}` or `{"benches":[…]}`.
    #[serde(default)]
    pub target: serde_json::Value,
    /// The merge patch it rolls out.
    #[serde(default)]
    pub change: serde_json::Value,
    pub state: RolloutState,
    #[serde(default)]
    pub reason: Option<String>,
    pub step: usize,
    pub steps: usize,
    #[serde(default)]
    pub paused_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    #[serde(default)]
    pub finished_at: Option<DateTime<Utc>>,
    /// Every affected bench, in step order.
    #[serde(default)]
    pub benches: Vec<BenchProgress>,
}

impl Rollout {
    /// The rollout in brief, as the list shows it.
    pub fn summary(&self) -> RolloutSummary {
        let mut counts = BTreeMap::new();
        for b in &self.benches {
            *counts.entry(b.state).or_insert(0) += 1;
        }
        RolloutSummary {
            id: self.id.clone(),
            state: self.state,
            step: self.step,
            steps: self.steps,
            reason: self.reason.clone(),
            counts,
            created_by: self.created_by.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// The target in a few words: `fleet`, `Mostar, Ravno`, `benches mostar-01, ravno-01`.
    pub fn target_text(&self) -> String {
        let list = |v: &serde_json::Value| {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(serde_json::Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        match &self.target {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Object(o) => o
                .iter()
                .map(|(k, v)| format!("{k} {}", list(v)))
                .collect::<Vec<_>>()
                .join("; "),
            serde_json::Value::Null => "—".to_owned(),
            other => other.to_string(),
        }
    }
}

/// `GET /api/v1/ota/benches` items and the `bench_config` live event: one bench's desired and
/// reported configuration version, delivery and drift.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BenchConfigStatus {
    pub bench_id: String,
    /// The version the bench should run.
    pub desired_version: u64,
    pub state: DeliveryState,
    /// When `state` was entered.
    pub state_at: DateTime<Utc>,
    /// The version the bench last said it runs, if it ever did.
    #[serde(default)]
    pub reported_version: Option<u64>,
    /// The bench's reason for rejecting the desired version.
    #[serde(default)]
    pub error: Option<String>,
    /// The rollout that issued the desired version, if any.
    #[serde(default)]
    pub rollout_id: Option<String>,
    /// Seconds desired and reported have differed (0 in sync).
    #[serde(default)]
    pub drift_seconds: u64,
    /// Differed for longer than the control plane's drift threshold.
    #[serde(default)]
    pub drifting: bool,
}

/// What an operator does to a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Steer {
    /// Stop a running rollout from advancing.
    Pause,
    /// Let a paused rollout continue.
    Resume,
    /// Stop an active rollout; the benches it reached get their previous configuration back.
    Abort,
    /// Undo a completed rollout.
    Rollback,
}

impl Steer {
    /// The last segment of its route, and the verb on screen.
    pub fn verb(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Abort => "abort",
            Self::Rollback => "roll back",
        }
    }

    fn route(self) -> &'static str {
        match self {
            Self::Rollback => "rollback",
            other => other.verb(),
        }
    }

    pub fn doing(self) -> &'static str {
        match self {
            Self::Pause => "pausing",
            Self::Resume => "resuming",
            Self::Abort => "aborting",
            Self::Rollback => "rolling back",
        }
    }

    pub fn past(self) -> &'static str {
        match self {
            Self::Pause => "paused",
            Self::Resume => "resumed",
            Self::Abort => "aborted",
            Self::Rollback => "rolled back",
        }
    }

    /// Abort and rollback undo work: the console asks why (the reason goes to the audit log).
    pub fn needs_reason(self) -> bool {
        matches!(self, Self::Abort | Self::Rollback)
    }

    /// Whether a rollout in `state` can take this action (the server decides; this only spares
    /// the operator an obvious 409).
    pub fn applies_to(self, state: RolloutState) -> bool {
        match self {
            Self::Pause => state == RolloutState::Running,
            Self::Resume => state == RolloutState::Paused,
            Self::Abort => state.is_active(),
            Self::Rollback => state == RolloutState::Completed,
        }
    }
}

impl Client {
    /// `GET /api/v1/rollouts`: every rollout in brief, newest first.
    pub async fn rollouts(&self) -> Result<Vec<RolloutSummary>, ApiError> {
        self.json(self.get("/api/v1/rollouts")).await
    }

    /// `GET /api/v1/rollouts/{id}`: one rollout with per-bench progress.
    pub async fn rollout(&self, id: &str) -> Result<Rollout, ApiError> {
        self.json(self.get(&format!("/api/v1/rollouts/{id}"))).await
    }

    /// `GET /api/v1/ota/benches`: every bench's configuration state.
    pub async fn ota_benches(&self) -> Result<Vec<BenchConfigStatus>, ApiError> {
        self.json(self.get("/api/v1/ota/benches")).await
    }

    /// `POST /api/v1/rollouts/{id}/pause|resume|abort|rollback?reason=`; the answer is the
    /// rollout after the action.
    pub async fn steer(&self, id: &str, action: Steer, reason: Option<&str>) -> Result<Rollout, ApiError> {
        let mut req = self
            .http
            .post(format!("{}/api/v1/rollouts/{id}/{}", self.base, action.route()));
        if let Some(r) = reason {
            req = req.query(&[("reason", r)]);
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        self.json(req).await
    }
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

        let status: BenchConfigStatus = serde_json::from_str(
            r#"{"bench_id":"novi-grad-01","desired_version":7,"desired":{"wifi":{"ssid":"x"}},
                "issued_at":"2026-11-26T09:00:00Z","state":"delivered","state_at":"2026-11-26T09:01:00Z",
                "reported_version":6,"reported_at":"2026-11-20T09:00:00Z","error":null,
                "drift_since":"2026-11-26T09:00:00Z","rollout_id":"r-1","drift_seconds":3600,"drifting":true}"#,
        )
        .unwrap();
        assert_eq!(status.state, DeliveryState::Delivered);
        assert_eq!((status.desired_version, status.reported_version), (7, Some(6)));
        assert!(status.drifting);

        let rollout: Rollout = serde_json::from_str(
            r#"{"id":"r-1","created_at":"2026-11-26T09:00:00Z","created_by":"ana","note":null,
                "target":{"municipalities":["Mostar","Ravno"]},"change":{"sleep":{"start":"23:00"}},
                "strategy":{"canary":[],"soak_s":600,"step_timeout_s":900,"max_failure_ratio":0.2},
                "before":[],"after":[],"state":"paused","reason":null,"step":0,"steps":2,
                "step_started_at":null,"paused_at":"2026-11-26T09:10:00Z","updated_at":"2026-11-26T09:10:00Z",
                "finished_at":null,"benches":[{"bench":"mostar-01","step":0,"state":"soaking",
                "from":{},"to":{},"version":8,"rollback_version":null,"baseline_faults":0,
                "soak_since":"2026-11-26T09:05:00Z","at":"2026-11-26T09:05:00Z","detail":null}]}"#,
        )
        .unwrap();
        assert_eq!(rollout.target_text(), "municipalities Mostar, Ravno");
        assert_eq!(rollout.benches[0].state, Progress::Soaking);
        assert_eq!(rollout.summary().counts.get(&Progress::Soaking), Some(&1));
    }

    #[test]
    fn actions_apply_to_the_states_the_server_accepts() {
        use RolloutState::*;
        assert!(Steer::Pause.applies_to(Running) && !Steer::Pause.applies_to(Paused));
        assert!(Steer::Resume.applies_to(Paused) && !Steer::Resume.applies_to(Running));
        assert!(Steer::Abort.applies_to(Running) && Steer::Abort.applies_to(Paused));
        assert!(!Steer::Abort.applies_to(Completed));
        assert!(Steer::Rollback.applies_to(Completed) && !Steer::Rollback.applies_to(Aborted));
        assert_eq!(Steer::Rollback.route(), "rollback");
        assert!(Steer::Abort.needs_reason() && !Steer::Pause.needs_reason());
    }
}
