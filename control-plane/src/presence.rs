//! Presence: whether each bench is online, offline, stale, sleeping or never seen.
//!
//! Inputs are the bench's authenticated MQTT connection (exact connect/disconnect events from the
//! broker), its retained `status` messages and Last Will, and telemetry arrivals; a heartbeat
//! timeout (no telemetry for `stale_after_intervals` × the bench's interval) is the backstop.
//! The state machine ([`Presence`]) is pure; [`PresenceTracker`] wraps it, stores every change as
//! a `bench_status_events` row (retrying while the store is down) and keeps the metrics.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::BackoffBuilder;
use chrono::{DateTime, Utc};
use protocol::status::AnnouncedState;
use protocol::{BenchState, Fleet, Status};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

mod records;
pub use records::{PresenceStore, StatusCursor, StatusEvent};

/// The `[presence]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PresenceSettings {
    /// A connected bench silent for this many telemetry intervals is reported `stale`.
    pub stale_after_intervals: u32,
}

impl Default for PresenceSettings {
    fn default() -> Self {
        Self {
            stale_after_intervals: 3,
        }
    }
}

/// What presence knows about one bench.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchPresence {
    pub state: BenchState,
    /// When `state` began.
    pub since: Option<DateTime<Utc>>,
    /// Last telemetry received.
    pub last_seen: Option<DateTime<Utc>>,
    pub fw: Option<String>,
    pub config_version: Option<u64>,
    /// For `sleeping`: the announced wake-up time.
    pub until: Option<DateTime<Utc>>,
    /// The live authenticated connection, if any (a broker serial, not the client id).
    conn: Option<u64>,
    /// When the live connection was opened.
    connected_at: Option<DateTime<Utc>>,
    /// Expected telemetry interval.
    interval: Duration,
}

/// Something presence reacts to.
#[derive(Debug, Clone)]
pub enum Input {
    Connected { conn: u64 },
    Disconnected { conn: u64 },
    Status(Status),
    Telemetry,
}

/// The presence state machine of the whole fleet.
#[derive(Debug, Clone)]
pub struct Presence {
    benches: HashMap<String, BenchPresence>,
    stale_after_intervals: u32,
}

impl Presence {
    pub fn new(fleet: &Fleet, stale_after_intervals: u32) -> Self {
        let benches = fleet
            .iter()
            .map(|b| {
                let p = BenchPresence {
                    state: BenchState::NeverSeen,
                    since: None,
                    last_seen: None,
                    fw: None,
                    config_version: None,
                    until: None,
                    conn: None,
                    connected_at: None,
                    interval: Duration::from_secs(u64::from(b.telemetry_interval_s)),
                };
                (b.id.to_string(), p)
            })
            .collect();
        Self {
            benches,
            stale_after_intervals,
        }
    }

    /// Resumes from the last stored event of each bench. A bench that was online when the control
    /// plane stopped lost its connection with it: it is offline until it reconnects.
    pub fn restore(&mut self, last: &[StatusEvent], now: DateTime<Utc>) -> Vec<StatusEvent> {
        let mut changes = Vec::new();
        for ev in last {
            let Some(p) = self.benches.get_mut(&ev.bench_id) else {
                continue;
            };
            p.state = ev.state;
            p.since = Some(ev.at);
            p.fw = ev.fw.clone();
            p.config_version = ev.config_version.and_then(|v| u64::try_from(v).ok());
            p.until = ev.until;
            if matches!(ev.state, BenchState::Online | BenchState::Stale) {
                changes.extend(transition(
                    &ev.bench_id,
                    p,
                    BenchState::Offline,
                    "control_plane_restart",
                    now,
                ));
            }
        }
        changes
    }

    pub fn get(&self, bench: &str) -> Option<&BenchPresence> {
        self.benches.get(bench)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &BenchPresence)> {
        self.benches.iter()
    }

    /// Applies one input; returns the state change it caused, if any.
    pub fn apply(&mut self, bench: &str, input: Input, now: DateTime<Utc>) -> Option<StatusEvent> {
        let p = self.benches.get_mut(bench)?;
        match input {
            Input::Connected { conn } => {
                p.conn = Some(conn);
                p.connected_at = Some(now);
                transition(bench, p, BenchState::Online, "connected", now)
            }
            Input::Disconnected { conn } => {
                // A reconnect with the same client id reports before the old connection's drop.
                if p.conn != Some(conn) {
                    return None;
                }
                p.conn = None;
                p.connected_at = None;
                if p.state == BenchState::Sleeping && p.until.is_some_and(|u| u > now) {
                    return None;
                }
                transition(bench, p, BenchState::Offline, "disconnected", now)
            }
            Input::Status(status) => {
                if status.fw.is_some() {
                    p.fw.clone_from(&status.fw);
                }
                if status.config_version.is_some() {
                    p.config_version = status.config_version;
                }
                match status.state {
                    AnnouncedState::Online if p.conn.is_some() => {
                        p.until = None;
                        transition(bench, p, BenchState::Online, "announced", now)
                    }
                    // A retained `online` from a past connection says nothing about now.
                    AnnouncedState::Online => None,
                    AnnouncedState::Sleeping => {
                        p.until = status.until;
                        if status.until.is_some_and(|u| u > now) {
                            transition(bench, p, BenchState::Sleeping, "announced", now)
                        } else {
                            None
                        }
                    }
                    AnnouncedState::Offline => {
                        // The Last Will of a connection that is already gone (or retained from before).
                        let asleep = p.state == BenchState::Sleeping && p.until.is_some_and(|u| u > now);
                        if p.conn.is_some() || asleep || p.state == BenchState::NeverSeen {
                            None
                        } else {
                            transition(bench, p, BenchState::Offline, "last_will", now)
                        }
                    }
                }
            }
            Input::Telemetry => {
                p.last_seen = Some(now);
                match p.state {
                    BenchState::Stale if p.conn.is_some() => {
                        transition(bench, p, BenchState::Online, "telemetry_resumed", now)
                    }
                    // Telemetry means a live connection, whatever the last status said.
                    BenchState::Offline | BenchState::NeverSeen | BenchState::Sleeping if p.conn.is_some() => {
                        p.until = None;
                        transition(bench, p, BenchState::Online, "telemetry", now)
                    }
                    _ => None,
                }
            }
        }
    }

    /// Time-driven changes: heartbeat timeouts and sleeps that ran out.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<StatusEvent> {
        let mut changes = Vec::new();
        for (bench, p) in &mut self.benches {
            match p.state {
                BenchState::Online => {
                    let silent_since = p.last_seen.max(p.connected_at).or(p.since);
                    let limit = p.interval * self.stale_after_intervals;
                    let limit = chrono::Duration::from_std(limit).unwrap_or(chrono::Duration::MAX);
                    if silent_since.is_some_and(|t| now - t > limit) {
                        changes.extend(transition(bench, p, BenchState::Stale, "heartbeat_timeout", now));
                    }
                }
                BenchState::Sleeping if p.until.is_none_or(|u| u <= now) => {
                    let next = if p.conn.is_some() {
                        BenchState::Online
                    } else {
                        BenchState::Offline
                    };
                    changes.extend(transition(bench, p, next, "sleep_expired", now));
                }
                _ => {}
            }
        }
        changes
    }

    /// Changes the expected telemetry interval of a bench (from its configuration).
    pub fn set_interval(&mut self, bench: &str, interval: Duration) {
        if let Some(p) = self.benches.get_mut(bench) {
            p.interval = interval;
        }
    }
}

fn transition(
    bench: &str,
    p: &mut BenchPresence,
    to: BenchState,
    cause: &str,
    now: DateTime<Utc>,
) -> Option<StatusEvent> {
    if p.state == to {
        return None;
    }
    p.state = to;
    p.since = Some(now);
    Some(StatusEvent {
        bench_id: bench.to_owned(),
        at: now,
        state: to,
        cause: cause.to_owned(),
        fw: p.fw.clone(),
        config_version: p.config_version.and_then(|v| i64::try_from(v).ok()),
        until: if to == BenchState::Sleeping { p.until } else { None },
    })
}

/// How many state changes a live-event subscriber may fall behind before it skips some.
pub const CHANGES_CAPACITY: usize = 1024;

/// Presence shared by the broker dispatcher and the API; persists every change.
#[derive(Clone)]
pub struct PresenceTracker {
    inner: Arc<Mutex<Presence>>,
    /// Every state change, for live subscribers (the API's event stream).
    changes: tokio::sync::broadcast::Sender<StatusEvent>,
    pending: Arc<Mutex<VecDeque<StatusEvent>>>,
    wake: Arc<tokio::sync::Notify>,
    metrics: Arc<Metrics>,
}

impl PresenceTracker {
    /// Restores presence from the store, then starts the tick and the event writer.
    pub async fn start(
        fleet: &Fleet,
        settings: &PresenceSettings,
        store: Arc<dyn PresenceStore>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Result<(Self, tokio::task::JoinHandle<()>), crate::persistence::StoreError> {
        let mut presence = Presence::new(fleet, settings.stale_after_intervals);
        let restored = presence.restore(&store.latest_status_events().await?, Utc::now());
        let tracker = Self {
            inner: Arc::new(Mutex::new(presence)),
            changes: tokio::sync::broadcast::channel(CHANGES_CAPACITY).0,
            pending: Arc::default(),
            wake: Arc::default(),
            metrics,
        };
        for (bench, p) in tracker.lock().iter() {
            tracker.metrics.set_state(bench, p.state);
        }
        tracker.record(restored);
        let task = tokio::spawn(tracker.clone().run(store, shutdown));
        Ok((tracker, task))
    }

    /// Feeds one input.
    pub fn apply(&self, bench: &str, input: Input) {
        let change = self.lock().apply(bench, input, Utc::now());
        self.record(change);
    }

    /// A copy of one bench's presence.
    pub fn get(&self, bench: &str) -> Option<BenchPresence> {
        self.lock().get(bench).cloned()
    }

    /// Changes the expected telemetry interval of a bench (its applied configuration's).
    pub fn set_interval(&self, bench: &str, interval: Duration) {
        self.lock().set_interval(bench, interval);
    }

    /// A copy of the whole fleet's presence.
    pub fn snapshot(&self) -> Presence {
        self.lock().clone()
    }

    /// State changes from now on. A receiver more than [`CHANGES_CAPACITY`] behind skips the
    /// oldest and is told how many (`RecvError::Lagged`).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<StatusEvent> {
        self.changes.subscribe()
    }

    /// Status events not yet stored.
    pub fn unwritten(&self) -> usize {
        self.pending.lock().map(|p| p.len()).unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Presence> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, changes: impl IntoIterator<Item = StatusEvent>) {
        let mut any = false;
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for ev in changes {
            tracing::info!(bench.id = %ev.bench_id, bench.state = %ev.state, cause = %ev.cause, "bench state changed");
            self.metrics.set_state(&ev.bench_id, ev.state);
            // No subscribers is not an error.
            let _ = self.changes.send(ev.clone());
            pending.push_back(ev);
            any = true;
        }
        if any {
            self.wake.notify_one();
        }
    }

    async fn run(self, store: Arc<dyn PresenceStore>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let retry = crate::persistence::retry();
        let mut backoff = retry.build();
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    let changes = self.lock().tick(Utc::now());
                    self.record(changes);
                }
                () = self.wake.notified() => {}
                () = shutdown.cancelled() => break,
            }
            // Write in order; on failure keep the event and retry later.
            while let Some(ev) = self.pending.lock().ok().and_then(|p| p.front().cloned()) {
                match store.insert_status_event(&ev).await {
                    Ok(()) => {
                        self.pending.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                        backoff = retry.build();
                    }
                    Err(e) => {
                        self.metrics.store_write_errors.inc();
                        tracing::warn!(error = %e, presence.unwritten = self.unwritten(), "status event write failed; will retry");
                        tokio::select! {
                            () = tokio::time::sleep(backoff.next().unwrap_or(crate::persistence::RETRY_MAX)) => {}
                            () = shutdown.cancelled() => break,
                        }
                    }
                }
            }
        }
        // Last attempt on the way out.
        while let Some(ev) = self.pending.lock().ok().and_then(|p| p.front().cloned()) {
            if store.insert_status_event(&ev).await.is_err() {
                tracing::error!(
                    presence.unwritten = self.unwritten(),
                    "shutting down with status events the store did not accept"
                );
                break;
            }
            self.pending.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + i64::from(s), 0).unwrap()
    }

    fn presence() -> Presence {
        Presence::new(&Fleet::link4(), 3)
    }

    fn state(p: &Presence) -> BenchState {
        p.get("mostar-01").unwrap().state
    }

    #[test]
    fn connect_disconnect_and_reconnect_race() {
        let mut p = presence();
        assert_eq!(state(&p), BenchState::NeverSeen);
        let ev = p.apply("mostar-01", Input::Connected { conn: 1 }, t(0)).unwrap();
        assert_eq!((ev.state, ev.cause.as_str()), (BenchState::Online, "connected"));
        // Reconnect: the new connection reports before the old one is dropped.
        assert!(p.apply("mostar-01", Input::Connected { conn: 2 }, t(5)).is_none());
        assert!(p.apply("mostar-01", Input::Disconnected { conn: 1 }, t(6)).is_none());
        assert_eq!(state(&p), BenchState::Online);
        let ev = p.apply("mostar-01", Input::Disconnected { conn: 2 }, t(7)).unwrap();
        assert_eq!((ev.state, ev.at), (BenchState::Offline, t(7)));
        assert!(p.apply("nowhere-01", Input::Connected { conn: 3 }, t(8)).is_none());
    }

    #[test]
    fn last_will_after_drop_does_not_double_count() {
        let mut p = presence();
        p.apply("mostar-01", Input::Connected { conn: 1 }, t(0));
        p.apply("mostar-01", Input::Disconnected { conn: 1 }, t(10));
        assert!(
            p.apply("mostar-01", Input::Status(Status::last_will()), t(10))
                .is_none()
        );
        assert_eq!(state(&p), BenchState::Offline);
        // Last Will while connected (a stale retained message): ignored.
        p.apply("mostar-01", Input::Connected { conn: 2 }, t(20));
        assert!(
            p.apply("mostar-01", Input::Status(Status::last_will()), t(21))
                .is_none()
        );
        assert_eq!(state(&p), BenchState::Online);
    }

    #[test]
    fn sleeping_is_not_an_outage_until_it_runs_out() {
        let mut p = presence();
        p.apply("mostar-01", Input::Connected { conn: 1 }, t(0));
        let ev = p
            .apply("mostar-01", Input::Status(Status::sleeping(t(600))), t(10))
            .unwrap();
        assert_eq!((ev.state, ev.until), (BenchState::Sleeping, Some(t(600))));
        assert!(p.apply("mostar-01", Input::Disconnected { conn: 1 }, t(11)).is_none());
        assert!(
            p.apply("mostar-01", Input::Status(Status::last_will()), t(11))
                .is_none()
        );
        assert!(p.tick(t(599)).is_empty());
        let changes = p.tick(t(601));
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (changes[0].state, changes[0].cause.as_str()),
            (BenchState::Offline, "sleep_expired")
        );
    }

    #[test]
    fn waking_early_comes_back_online() {
        let mut p = presence();
        p.apply("mostar-01", Input::Connected { conn: 1 }, t(0));
        p.apply("mostar-01", Input::Status(Status::sleeping(t(600))), t(10));
        p.apply("mostar-01", Input::Disconnected { conn: 1 }, t(11));
        p.apply("mostar-01", Input::Connected { conn: 2 }, t(300));
        assert_eq!(state(&p), BenchState::Online);
    }

    #[test]
    fn heartbeat_timeout_and_recovery() {
        let mut p = presence(); // 60 s interval, stale after 3 intervals
        p.apply("mostar-01", Input::Connected { conn: 1 }, t(0));
        p.apply("mostar-01", Input::Telemetry, t(10));
        assert!(p.tick(t(190)).is_empty());
        let changes = p.tick(t(191));
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (changes[0].state, changes[0].cause.as_str()),
            (BenchState::Stale, "heartbeat_timeout")
        );
        let ev = p.apply("mostar-01", Input::Telemetry, t(200)).unwrap();
        assert_eq!(ev.state, BenchState::Online);
        p.set_interval("mostar-01", Duration::from_secs(5));
        assert_eq!(p.tick(t(216)).len(), 1);
    }

    #[test]
    fn status_carries_firmware_and_config_version() {
        let mut p = presence();
        p.apply("mostar-01", Input::Connected { conn: 1 }, t(0));
        p.apply("mostar-01", Input::Status(Status::online("1.4.2", 3)), t(1));
        let b = p.get("mostar-01").unwrap();
        assert_eq!((b.fw.as_deref(), b.config_version), (Some("1.4.2"), Some(3)));
    }

    #[test]
    fn restore_turns_online_into_offline() {
        let mut p = presence();
        let last = vec![
            StatusEvent {
                bench_id: "mostar-01".into(),
                at: t(0),
                state: BenchState::Online,
                cause: "connected".into(),
                fw: Some("1.0.0".into()),
                config_version: Some(2),
                until: None,
            },
            StatusEvent {
                bench_id: "ravno-01".into(),
                at: t(0),
                state: BenchState::Offline,
                cause: "disconnected".into(),
                fw: None,
                config_version: None,
                until: None,
            },
        ];
        let changes = p.restore(&last, t(100));
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (changes[0].bench_id.as_str(), changes[0].cause.as_str()),
            ("mostar-01", "control_plane_restart")
        );
        assert_eq!(p.get("ravno-01").unwrap().state, BenchState::Offline);
        assert_eq!(p.get("mostar-01").unwrap().fw.as_deref(), Some("1.0.0"));
    }
}
