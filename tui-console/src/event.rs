//! The one event type the console reacts to: terminal input, the clock, and whatever the
//! control plane sent (poll results and the live stream), all merged into one channel.

use chrono::{DateTime, Utc};
use crossterm::event::KeyEvent;

use crate::api::{
    ApiError, Bench, BenchConfigStatus, BenchDetail, BenchStateEvent, FleetSummary, IdeaDetail, IdeaPage, Moderation,
    Readiness, Rollout, RolloutSummary, Steer, TelemetryEvent, TelemetrySeries,
};
use crate::app::{Feature, Window};

/// Everything `App::update` handles.
// Each event is moved once through a channel; boxing the large answers would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Key(KeyEvent),
    /// The terminal changed size; ratatui relayouts on the next draw.
    Resize(u16, u16),
    /// The clock moved on (once a second): "last seen" ages and stale notices update.
    Tick(DateTime<Utc>),
    Api(ApiEvent),
}

/// Data (or a failure) from the control plane.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum ApiEvent {
    Benches(Result<Vec<Bench>, ApiError>),
    Summary(Result<FleetSummary, ApiError>),
    Readiness(Result<Readiness, ApiError>),
    Detail {
        id: String,
        result: Result<BenchDetail, ApiError>,
    },
    Telemetry {
        id: String,
        window: Window,
        result: Result<TelemetrySeries, ApiError>,
    },
    /// Whether a feature's routes exist on this control plane.
    Feature {
        feature: Feature,
        result: Result<bool, ApiError>,
    },
    /// The moderation queue (`held`, `unroutable`, `escalated`).
    IdeaQueue(Result<IdeaPage, ApiError>),
    /// The newest ideas.
    Ideas(Result<IdeaPage, ApiError>),
    /// One idea with its history.
    IdeaDetail {
        id: String,
        result: Result<IdeaDetail, ApiError>,
    },
    /// The answer to an approval or a rejection.
    Moderated {
        id: String,
        action: Moderation,
        result: Result<IdeaDetail, ApiError>,
    },
    /// Every bench's configuration state (`/api/v1/ota/benches`).
    OtaBenches(Result<Vec<BenchConfigStatus>, ApiError>),
    /// Every rollout in brief.
    Rollouts(Result<Vec<RolloutSummary>, ApiError>),
    /// One rollout with per-bench progress.
    RolloutDetail {
        id: String,
        result: Result<Rollout, ApiError>,
    },
    /// The answer to pausing, resuming, aborting or rolling back a rollout.
    Steered {
        id: String,
        action: Steer,
        result: Result<Rollout, ApiError>,
    },
    Stream(StreamEvent),
}

/// What the `/api/v1/events` stream said, or that it dropped.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Connected,
    /// The stream could not be opened or ended; the console falls back to polling alone.
    Down(ApiError),
    BenchState(BenchStateEvent),
    Telemetry(TelemetryEvent),
    /// The server dropped this many events for us: refetch.
    Lagged(u64),
    /// An idea moved (`idea` events): the ideas view refetches while it is open.
    IdeaChanged {
        idea_id: String,
        tracking_code: String,
    },
    /// A rollout advanced, paused, completed or aborted (`rollout` events): the rollouts view
    /// refetches while it is open.
    RolloutChanged(RolloutSummary),
    /// A bench's desired or reported configuration or its delivery changed (`bench_config`).
    BenchConfig(BenchConfigStatus),
}
