//! How the OTA state is shown: explicit conversions from the domain's records and state
//! machines into the wire types of [`protocol::ota`], so the state (and what is stored of it)
//! and the API can change separately.

use protocol::ota as wire;

use super::delivery::{BenchConfigRecord, DeliveryState};
use super::records::{IssuedVersion, LayerRecord};
use super::rollout::{BenchProgress, Progress, Rollout, RolloutState};
use super::{BenchConfigStatus, RolloutSummary};

impl From<DeliveryState> for wire::DeliveryState {
    fn from(s: DeliveryState) -> Self {
        match s {
            DeliveryState::Pending => Self::Pending,
            DeliveryState::Delivered => Self::Delivered,
            DeliveryState::Applied => Self::Applied,
            DeliveryState::Rejected => Self::Rejected,
            DeliveryState::TimedOut => Self::TimedOut,
        }
    }
}

impl From<RolloutState> for wire::RolloutState {
    fn from(s: RolloutState) -> Self {
        match s {
            RolloutState::Running => Self::Running,
            RolloutState::Paused => Self::Paused,
            RolloutState::Completed => Self::Completed,
            RolloutState::Aborted => Self::Aborted,
            RolloutState::RolledBack => Self::RolledBack,
        }
    }
}

impl From<Progress> for wire::Progress {
    fn from(p: Progress) -> Self {
        match p {
            Progress::Waiting => Self::Waiting,
            Progress::Pending => Self::Pending,
            Progress::Soaking => Self::Soaking,
            Progress::Healthy => Self::Healthy,
            Progress::Skipped => Self::Skipped,
            Progress::Rejected => Self::Rejected,
            Progress::TimedOut => Self::TimedOut,
            Progress::Unhealthy => Self::Unhealthy,
            Progress::RolledBack => Self::RolledBack,
        }
    }
}

impl From<BenchConfigStatus> for wire::BenchConfigStatus {
    fn from(s: BenchConfigStatus) -> Self {
        let BenchConfigRecord {
            bench_id,
            desired_version,
            desired,
            issued_at,
            state,
            state_at,
            reported_version,
            reported_at,
            error,
            drift_since,
            rollout_id,
        } = s.record;
        Self {
            bench_id,
            desired_version,
            desired,
            issued_at,
            state: state.into(),
            state_at,
            reported_version,
            reported_at,
            error,
            drift_since,
            rollout_id,
            drift_seconds: s.drift_seconds,
            drifting: s.drifting,
        }
    }
}

impl From<LayerRecord> for wire::Layer {
    fn from(l: LayerRecord) -> Self {
        Self {
            layer: l.layer,
            content: l.content,
            updated_at: l.updated_at,
            updated_by: l.updated_by,
        }
    }
}

impl From<IssuedVersion> for wire::IssuedVersion {
    fn from(v: IssuedVersion) -> Self {
        Self {
            bench_id: v.bench_id,
            version: v.version,
            config: v.config,
            issued_at: v.issued_at,
            cause: v.cause,
            actor: v.actor,
            rollout_id: v.rollout_id,
        }
    }
}

impl From<BenchProgress> for wire::BenchProgress {
    fn from(p: BenchProgress) -> Self {
        Self {
            bench: p.bench,
            step: p.step,
            state: p.state.into(),
            from: p.from,
            to: p.to,
            version: p.version,
            rollback_version: p.rollback_version,
            baseline_faults: p.baseline_faults,
            soak_since: p.soak_since,
            at: p.at,
            detail: p.detail,
        }
    }
}

impl From<Rollout> for wire::Rollout {
    fn from(r: Rollout) -> Self {
        Self {
            id: r.id,
            created_at: r.created_at,
            created_by: r.created_by,
            note: r.note,
            target: r.target,
            change: r.change,
            strategy: r.strategy,
            before: r.before,
            after: r.after,
            state: r.state.into(),
            reason: r.reason,
            step: r.step,
            steps: r.steps,
            step_started_at: r.step_started_at,
            paused_at: r.paused_at,
            updated_at: r.updated_at,
            finished_at: r.finished_at,
            benches: r.benches.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<RolloutSummary> for wire::RolloutSummary {
    fn from(r: RolloutSummary) -> Self {
        Self {
            id: r.id,
            state: r.state.into(),
            step: r.step,
            steps: r.steps,
            reason: r.reason,
            counts: r.counts.into_iter().map(|(p, n)| (p.into(), n)).collect(),
            created_by: r.created_by,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}
