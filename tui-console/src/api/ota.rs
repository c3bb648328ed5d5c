//! The OTA routes as the console uses them: rollouts, their steering, and every bench's
//! configuration state. The types are [`protocol::ota`]'s, shared with the control plane; they
//! ignore unknown fields and read a state added later as `Other`.

use protocol::ota::{BenchConfigStatus, Rollout, RolloutState, RolloutSummary};

use super::{ApiError, Client};

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
