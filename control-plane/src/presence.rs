//! Presence: whether each bench is online, offline, stale, sleeping or never seen.
//!
//! Inputs are the bench's authenticated MQTT connection (exact connect/disconnect events from the
//! broker), its retained `status` messages and Last Will, and telemetry arrivals; a heartbeat
//! timeout (no telemetry for `stale_after_intervals` × the bench's interval) is the backstop.
//! A disconnect is held for `takeover_grace_ms` before it counts: a bench that reconnects within
//! it (a takeover with the same client id, where rumqttd ends the old connection first) never
//! went offline; otherwise the tick records the offline at the disconnect's time.
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
    /// How long a disconnect is held before it counts as `offline`, in milliseconds (at most
    /// 60000). A bench that connects again within it (a takeover: the same client id while the
    /// old connection lives) stays `online` with nothing recorded; a longer drop is recorded
    /// `offline` from the moment of the disconnect. 0 records every disconnect at once.
    pub takeover_grace_ms: u64,
}

impl Default for PresenceSettings {
    fn default() -> Self {
        Self {
            stale_after_intervals: 3,
            takeover_grace_ms: 5000,
        }
    }
}

impl PresenceSettings {
    /// The longest `takeover_grace_ms` accepted: a longer drop is an outage, not a takeover.
    pub const MAX_TAKEOVER_GRACE_MS: u64 = 60_000;
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
    /// A disconnect not yet recorded (within the takeover grace): when it happened.
    held_offline: Option<DateTime<Utc>>,
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
    takeover_grace: chrono::Duration,
}

impl Presence {
    pub fn new(fleet: &Fleet, settings: &PresenceSettings) -> Self {
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
                    held_offline: None,
                    interval: Duration::from_secs(u64::from(b.telemetry_interval_s)),
                };
                (b.id.to_string(), p)
            })
            .collect();
        let grace_ms = settings.takeover_grace_ms.min(PresenceSettings::MAX_TAKEOVER_GRACE_MS);
        Self {
            benches,
            stale_after_intervals: settings.stale_after_intervals,
            takeover_grace: chrono::Duration::milliseconds(i64::try_from(grace_ms).unwrap_or(i64::MAX)),
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

    /// Applies one input; returns the state change it caused, if any. Call [`settle`](Self::settle)
    /// for the bench first, with the same `now`, so a held disconnect whose grace ran out before
    /// the next tick is recorded ahead of a reconnect.
    pub fn apply(&mut self, bench: &str, input: Input, now: DateTime<Utc>) -> Option<StatusEvent> {
        let p = self.benches.get_mut(bench)?;
        match input {
            Input::Connected { conn } => {
                p.conn = Some(conn);
                p.connected_at = Some(now);
                // Back within the grace: the held disconnect was a takeover, not an outage.
                p.held_offline = None;
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
                if self.takeover_grace > chrono::Duration::zero()
                    && matches!(p.state, BenchState::Online | BenchState::Stale)
                {
                    p.held_offline = Some(now);
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
                            // Announced before the disconnect it arrived after: a planned sleep.
                            p.held_offline = None;
                            transition(bench, p, BenchState::Sleeping, "announced", now)
                        } else {
                            None
                        }
                    }
                    AnnouncedState::Offline => {
                        // The Last Will of a connection that is already gone (or retained from before).
                        let asleep = p.state == BenchState::Sleeping && p.until.is_some_and(|u| u > now);
                        // A held disconnect is recorded by the tick, at the time of the drop.
                        let held = p.held_offline.is_some();
                        if p.conn.is_some() || asleep || held || p.state == BenchState::NeverSeen {
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

    /// Records `bench`'s held disconnect if its grace has run out by `now`.
    pub fn settle(&mut self, bench: &str, now: DateTime<Utc>) -> Option<StatusEvent> {
        let grace = self.takeover_grace;
        let p = self.benches.get_mut(bench)?;
        release(bench, p, |at| now - at >= grace)
    }

    /// Records every held disconnect at once, whatever the grace (the control plane stopping).
    pub fn settle_all(&mut self) -> Vec<StatusEvent> {
        let mut changes: Vec<_> = self
            .benches
            .iter_mut()
            .filter_map(|(bench, p)| release(bench, p, |_| true))
            .collect();
        changes.sort_by_key(|ev| ev.at);
        changes
    }

    /// Time-driven changes: held disconnects whose grace ran out, heartbeat timeouts and sleeps
    /// that ran out.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<StatusEvent> {
        let mut changes = Vec::new();
        let grace = self.takeover_grace;
        for (bench, p) in &mut self.benches {
            if p.held_offline.is_some() {
                // A held disconnect decides alone: offline once its grace is over, nothing before.
                changes.extend(release(bench, p, |at| now - at >= grace));
                continue;
            }
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

/// Records a held disconnect, at the time it happened, if `due` says its grace is over.
fn release(bench: &str, p: &mut BenchPresence, due: impl FnOnce(DateTime<Utc>) -> bool) -> Option<StatusEvent> {
    let at = p.held_offline.filter(|at| due(*at))?;
    p.held_offline = None;
    transition(bench, p, BenchState::Offline, "disconnected", at)
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
        let mut presence = Presence::new(fleet, settings);
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
        let now = Utc::now();
        let changes = {
            let mut presence = self.lock();
            let held = presence.settle(bench, now);
            held.into_iter()
                .chain(presence.apply(bench, input, now))
                .collect::<Vec<_>>()
        };
        self.record(changes);
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
        // The broker has stopped: whoever disconnected is not coming back to this process.
        let held = self.lock().settle_all();
        self.record(held);
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

    /// Presence with every disconnect recorded at once (no takeover grace).
    fn presence() -> Presence {
        with_grace(0)
    }

    fn with_grace(takeover_grace_ms: u64) -> Presence {
        let settings = PresenceSettings {
            stale_after_intervals: 3,
            takeover_grace_ms,
        };
        Presence::new(&Fleet::link4(), &settings)
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

    fn at_ms(ms: i64) -> DateTime<Utc> {
        t(0) + chrono::Duration::milliseconds(ms)
    }

    #[test]
    fn a_takeover_within_the_grace_records_nothing() {
        let mut p = with_grace(5000);
        p.apply("mostar-01", Input::Connected { conn: 1 }, at_ms(0)).unwrap();
        // rumqttd ends the old connection before the new one's CONNACK: drop, then connect.
        assert!(
            p.apply("mostar-01", Input::Disconnected { conn: 1 }, at_ms(1000))
                .is_none()
        );
        assert!(p.tick(at_ms(1000)).is_empty());
        assert!(p.settle("mostar-01", at_ms(1001)).is_none());
        assert!(
            p.apply("mostar-01", Input::Connected { conn: 2 }, at_ms(1001))
                .is_none()
        );
        for s in 1..=20 {
            assert!(p.tick(at_ms(1001 + s * 1000)).is_empty(), "nothing after the takeover");
        }
        let b = p.get("mostar-01").unwrap();
        assert_eq!((b.state, b.since), (BenchState::Online, Some(at_ms(0))));
        // The new connection's drop is a real one.
        assert!(
            p.apply("mostar-01", Input::Disconnected { conn: 2 }, at_ms(30_000))
                .is_none()
        );
        assert!(p.tick(at_ms(34_999)).is_empty());
        let changes = p.tick(at_ms(35_000));
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (changes[0].state, changes[0].at, changes[0].cause.as_str()),
            (BenchState::Offline, at_ms(30_000), "disconnected")
        );
    }

    #[test]
    fn a_drop_longer_than_the_grace_is_offline_from_the_disconnect() {
        let mut p = with_grace(5000);
        p.apply("mostar-01", Input::Connected { conn: 1 }, t(0));
        assert!(p.apply("mostar-01", Input::Disconnected { conn: 1 }, t(10)).is_none());
        // The Last Will of that drop is the same outage: held with it.
        assert!(
            p.apply("mostar-01", Input::Status(Status::last_will()), t(10))
                .is_none()
        );
        assert!(p.tick(t(14)).is_empty());
        let changes = p.tick(t(15));
        assert_eq!(changes.len(), 1);
        assert_eq!(
            (changes[0].state, changes[0].at, changes[0].cause.as_str()),
            (BenchState::Offline, t(10), "disconnected")
        );
        let b = p.get("mostar-01").unwrap();
        assert_eq!((b.state, b.since), (BenchState::Offline, Some(t(10))));
        let ev = p.apply("mostar-01", Input::Connected { conn: 2 }, t(20)).unwrap();
        assert_eq!((ev.state, ev.at), (BenchState::Online, t(20)));
    }

    #[test]
    fn a_reconnect_after_the_grace_but_before_the_tick_is_still_an_outage() {
        let mut p = with_grace(5000);
        p.apply("mostar-01", Input::Connected { conn: 1 }, t(0));
        p.apply("mostar-01", Input::Disconnected { conn: 1 }, t(10));
        let ev = p.settle("mostar-01", t(16)).unwrap();
        assert_eq!((ev.state, ev.at), (BenchState::Offline, t(10)));
        let ev = p.apply("mostar-01", Input::Connected { conn: 2 }, t(16)).unwrap();
        assert_eq!((ev.state, ev.at), (BenchState::Online, t(16)));
    }

    #[test]
    fn a_replacement_that_never_connects_leaves_the_bench_offline() {
        let mut p = with_grace(5000);
        p.apply("mostar-01", Input::Connected { conn: 1 }, t(0));
        // The old connection is dropped for a newcomer whose CONNACK never goes out.
        p.apply("mostar-01", Input::Disconnected { conn: 1 }, t(10));
        p.apply("mostar-01", Input::Telemetry, t(11));
        assert_eq!(p.tick(t(16)).len(), 1);
        assert_eq!(state(&p), BenchState::Offline);
        // Shutting down records what is held, at its own time.
        p.apply("mostar-01", Input::Connected { conn: 2 }, t(20));
        p.apply("mostar-01", Input::Disconnected { conn: 2 }, t(21));
        let changes = p.settle_all();
        assert_eq!(changes.len(), 1);
        assert_eq!((changes[0].state, changes[0].at), (BenchState::Offline, t(21)));
    }

    #[test]
    fn sleep_announced_before_a_held_drop_is_sleep() {
        let mut p = with_grace(5000);
        p.apply("mostar-01", Input::Connected { conn: 1 }, t(0));
        // The status and the disconnect travel on different paths; the drop can come first.
        p.apply("mostar-01", Input::Disconnected { conn: 1 }, t(10));
        let ev = p
            .apply("mostar-01", Input::Status(Status::sleeping(t(600))), t(10))
            .unwrap();
        assert_eq!(ev.state, BenchState::Sleeping);
        assert!(p.tick(t(20)).is_empty());
        assert_eq!(state(&p), BenchState::Sleeping);
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
