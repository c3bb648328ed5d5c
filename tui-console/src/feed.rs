//! Background fetching: polls the fleet, summary, readiness and every bench's configuration
//! state on an interval, fetches the focused bench's detail and telemetry and, while their views
//! are open, the ideas with the selected idea's history and the rollouts with the selected
//! rollout's progress; sends moderation and steering actions; follows the live event stream
//! (reconnecting with backoff); and turns every answer into an [`Event`] for the update loop.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::Utc;
use futures::StreamExt;
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;

use crate::api::sse::{SseEvent, SseParser};
use crate::api::{
    ApiError, BenchConfigStatus, BenchStateEvent, Client, IDEAS_PAGE, LaggedEvent, Moderation, RolloutSummary, Steer,
    TelemetryEvent,
};
use crate::app::{Feature, Focus, IdeasFocus, RolloutsFocus};
use crate::event::{ApiEvent, Event, StreamEvent};

/// How often optional features are probed for (they appear with control-plane upgrades).
const PROBE_EVERY: Duration = Duration::from_secs(60);
/// A stream silent for this long is dead: the server sends a comment every 15 s.
const STREAM_IDLE: Duration = Duration::from_secs(45);
const STREAM_BACKOFF_MIN: Duration = Duration::from_secs(1);
const STREAM_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// The running background tasks; they stop when the token is cancelled.
pub struct Feed {
    focus: watch::Sender<Option<Focus>>,
    ideas: watch::Sender<Option<IdeasFocus>>,
    rollouts: watch::Sender<Option<RolloutsFocus>>,
    refresh: Arc<Notify>,
    client: Client,
    tx: mpsc::Sender<Event>,
    cancel: CancellationToken,
}

impl Feed {
    /// Starts polling every `every` and following the event stream.
    pub fn spawn(client: Client, every: Duration, tx: mpsc::Sender<Event>, cancel: CancellationToken) -> Self {
        let (focus, focus_rx) = watch::channel(None);
        let (ideas, ideas_rx) = watch::channel(None);
        let (rollouts, rollouts_rx) = watch::channel(None);
        let refresh = Arc::new(Notify::new());
        tokio::spawn(poll_fleet(
            client.clone(),
            every,
            tx.clone(),
            refresh.clone(),
            cancel.clone(),
        ));
        tokio::spawn(poll_bench(
            client.clone(),
            every,
            focus_rx,
            tx.clone(),
            refresh.clone(),
            cancel.clone(),
        ));
        tokio::spawn(poll_ideas(
            client.clone(),
            every,
            ideas_rx,
            tx.clone(),
            refresh.clone(),
            cancel.clone(),
        ));
        tokio::spawn(poll_rollouts(
            client.clone(),
            every,
            rollouts_rx,
            tx.clone(),
            refresh.clone(),
            cancel.clone(),
        ));
        tokio::spawn(follow_stream(
            client.clone(),
            tx.clone(),
            refresh.clone(),
            cancel.clone(),
        ));
        Self {
            focus,
            ideas,
            rollouts,
            refresh,
            client,
            tx,
            cancel,
        }
    }

    /// Fetch the ideas view's data from now on (or stop, with `None`); the same focus again
    /// fetches everything again.
    pub fn ideas(&self, focus: Option<IdeasFocus>) {
        self.ideas.send_replace(focus);
    }

    /// Approves or rejects an idea in the background; the answer arrives as
    /// [`ApiEvent::Moderated`].
    pub fn moderate(&self, id: String, action: Moderation, reason: Option<String>) {
        let (client, tx, cancel) = (self.client.clone(), self.tx.clone(), self.cancel.clone());
        tokio::spawn(async move {
            let result = tokio::select! {
                () = cancel.cancelled() => return,
                r = client.moderate(&id, action, reason.as_deref()) => r,
            };
            if let Err(e) = &result {
                tracing::warn!(idea.id = %id, action = action.verb(), error = %e, "moderation refused or failed");
            } else {
                tracing::info!(idea.id = %id, action = action.verb(), "idea moderated");
            }
            send(&tx, ApiEvent::Moderated { id, action, result }).await;
        });
    }

    /// Fetch the rollouts view's data from now on (or stop, with `None`); the same focus again
    /// fetches everything again.
    pub fn rollouts(&self, focus: Option<RolloutsFocus>) {
        self.rollouts.send_replace(focus);
    }

    /// Pauses, resumes, aborts or rolls back a rollout in the background; the answer arrives
    /// as [`ApiEvent::Steered`].
    pub fn steer(&self, id: String, action: Steer, reason: Option<String>) {
        let (client, tx, cancel) = (self.client.clone(), self.tx.clone(), self.cancel.clone());
        tokio::spawn(async move {
            let result = tokio::select! {
                () = cancel.cancelled() => return,
                r = client.steer(&id, action, reason.as_deref()) => r,
            };
            if let Err(e) = &result {
                tracing::warn!(rollout.id = %id, action = action.verb(), error = %e, "rollout action refused or failed");
            } else {
                tracing::info!(rollout.id = %id, action = action.verb(), "rollout steered");
            }
            send(&tx, ApiEvent::Steered { id, action, result }).await;
        });
    }

    /// Fetch one bench's detail and telemetry from now on (or stop, with `None`).
    pub fn focus(&self, focus: Option<Focus>) {
        self.focus.send_replace(focus);
    }

    /// Poll everything now.
    pub fn refresh(&self) {
        self.refresh.notify_waiters();
    }
}

async fn send(tx: &mpsc::Sender<Event>, event: ApiEvent) -> bool {
    tx.send(Event::Api(event)).await.is_ok()
}

/// Logs a failed request once per distinct error, not on every retry.
fn log_failure(what: &str, last: &mut Option<ApiError>, result: Result<(), &ApiError>) {
    match result {
        Ok(()) if last.is_some() => {
            tracing::info!(request = what, "request succeeds again");
            *last = None;
        }
        Ok(()) => {}
        Err(e) if last.as_ref() != Some(e) => {
            tracing::warn!(request = what, error = %e, "request failed; retrying");
            *last = Some(e.clone());
        }
        Err(_) => {}
    }
}

async fn poll_fleet(
    client: Client,
    every: Duration,
    tx: mpsc::Sender<Event>,
    refresh: Arc<Notify>,
    cancel: CancellationToken,
) {
    let mut probe_due = Instant::now();
    let mut last_error = None;
    loop {
        let (benches, summary, readiness, config) = tokio::join!(
            client.benches(),
            client.summary(),
            client.readiness(),
            client.ota_benches()
        );
        log_failure("benches", &mut last_error, benches.as_ref().map(|_| ()));
        // The configuration state before the benches, so alerts see drift with the first list.
        if !send(&tx, ApiEvent::OtaBenches(config)).await
            || !send(&tx, ApiEvent::Benches(benches)).await
            || !send(&tx, ApiEvent::Summary(summary)).await
            || !send(&tx, ApiEvent::Readiness(readiness)).await
        {
            return;
        }
        if Instant::now() >= probe_due {
            for feature in Feature::ALL {
                let result = client.probe(feature.path()).await;
                if !send(&tx, ApiEvent::Feature { feature, result }).await {
                    return;
                }
            }
            probe_due = Instant::now() + PROBE_EVERY;
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = sleep(every) => {}
            () = refresh.notified() => {}
        }
    }
}

async fn poll_bench(
    client: Client,
    every: Duration,
    mut focus: watch::Receiver<Option<Focus>>,
    tx: mpsc::Sender<Event>,
    refresh: Arc<Notify>,
    cancel: CancellationToken,
) {
    loop {
        let current = focus.borrow_and_update().clone();
        if let Some(f) = &current {
            let (from, to) = f.window.range(Utc::now());
            let (detail, series) = tokio::join!(
                client.bench(&f.id),
                client.telemetry(&f.id, from, to, f.window.bucket())
            );
            let detail = ApiEvent::Detail {
                id: f.id.clone(),
                result: detail,
            };
            let series = ApiEvent::Telemetry {
                id: f.id.clone(),
                window: f.window,
                result: series,
            };
            if !send(&tx, detail).await || !send(&tx, series).await {
                return;
            }
        }
        let wait = async {
            match current {
                Some(_) => sleep(every).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = focus.changed() => if changed.is_err() { return },
            () = wait => {}
            () = refresh.notified() => {}
        }
    }
}

/// While the ideas view is open: the lists every interval (and on refresh), the selected idea's
/// history whenever the selection changes.
async fn poll_ideas(
    client: Client,
    every: Duration,
    mut focus: watch::Receiver<Option<IdeasFocus>>,
    tx: mpsc::Sender<Event>,
    refresh: Arc<Notify>,
    cancel: CancellationToken,
) {
    let mut previous: Option<IdeasFocus> = None;
    let mut lists_due = true;
    let mut last_error = None;
    loop {
        let current = focus.borrow_and_update().clone();
        if let Some(f) = &current {
            // A new selection alone needs only its history, not the lists again; the same focus
            // again (an idea changed) needs everything.
            let selection_only = previous
                .as_ref()
                .is_some_and(|p| p.queue == f.queue && p.selected != f.selected);
            if lists_due || !selection_only {
                let list = client.ideas(IDEAS_PAGE);
                let queue = async {
                    if f.queue {
                        Some(client.moderation_queue().await)
                    } else {
                        None
                    }
                };
                let (list, queue) = tokio::join!(list, queue);
                log_failure("ideas", &mut last_error, list.as_ref().map(|_| ()));
                if let Some(queue) = queue
                    && !send(&tx, ApiEvent::IdeaQueue(queue)).await
                {
                    return;
                }
                if !send(&tx, ApiEvent::Ideas(list)).await {
                    return;
                }
            }
            if let Some(id) = &f.selected {
                let result = client.idea(id).await;
                if !send(&tx, ApiEvent::IdeaDetail { id: id.clone(), result }).await {
                    return;
                }
            }
        }
        previous = current.clone();
        lists_due = false;
        let wait = async {
            match current {
                Some(_) => sleep(every).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = focus.changed() => if changed.is_err() { return },
            () = wait => lists_due = true,
            () = refresh.notified() => lists_due = true,
        }
    }
}

/// While the rollouts view is open: the list every interval (and on refresh), the selected
/// rollout's progress with it and whenever the selection changes.
async fn poll_rollouts(
    client: Client,
    every: Duration,
    mut focus: watch::Receiver<Option<RolloutsFocus>>,
    tx: mpsc::Sender<Event>,
    refresh: Arc<Notify>,
    cancel: CancellationToken,
) {
    let mut previous: Option<RolloutsFocus> = None;
    let mut list_due = true;
    let mut last_error = None;
    loop {
        let current = focus.borrow_and_update().clone();
        if let Some(f) = &current {
            // A new selection alone needs only its detail; the same focus again (a live event)
            // needs everything.
            let selection_only = previous.as_ref().is_some_and(|p| p.selected != f.selected);
            if list_due || !selection_only {
                let list = client.rollouts().await;
                log_failure("rollouts", &mut last_error, list.as_ref().map(|_| ()));
                if !send(&tx, ApiEvent::Rollouts(list)).await {
                    return;
                }
            }
            if let Some(id) = &f.selected {
                let result = client.rollout(id).await;
                if !send(&tx, ApiEvent::RolloutDetail { id: id.clone(), result }).await {
                    return;
                }
            }
        }
        previous = current.clone();
        list_due = false;
        let wait = async {
            match current {
                Some(_) => sleep(every).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            changed = focus.changed() => if changed.is_err() { return },
            () = wait => list_due = true,
            () = refresh.notified() => list_due = true,
        }
    }
}

async fn follow_stream(client: Client, tx: mpsc::Sender<Event>, refresh: Arc<Notify>, cancel: CancellationToken) {
    let retry = ExponentialBuilder::new()
        .with_min_delay(STREAM_BACKOFF_MIN)
        .with_max_delay(STREAM_BACKOFF_MAX)
        .without_max_times();
    let mut backoff = retry.build();
    loop {
        let mut connected = || backoff = retry.build();
        let error = tokio::select! {
            () = cancel.cancelled() => return,
            e = read_stream(&client, &tx, &refresh, &mut connected) => e,
        };
        let Some(error) = error else {
            return;
        };
        let wait = backoff.next().unwrap_or(STREAM_BACKOFF_MAX);
        tracing::debug!(error = %error, retry_in = ?wait, "event stream down");
        if !send(&tx, ApiEvent::Stream(StreamEvent::Down(error))).await {
            return;
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = sleep(wait) => {}
        }
    }
}

/// Reads one connection of the stream; returns why it ended, or `None` when the UI is gone.
async fn read_stream(
    client: &Client,
    tx: &mpsc::Sender<Event>,
    refresh: &Notify,
    connected: &mut impl FnMut(),
) -> Option<ApiError> {
    let mut bytes = match client.events().await {
        Ok(s) => Box::pin(s),
        Err(e) => return Some(e),
    };
    tracing::info!("event stream connected");
    connected();
    if !send(tx, ApiEvent::Stream(StreamEvent::Connected)).await {
        return None;
    }
    // Changes made while the stream was down are not replayed: poll now to catch up.
    refresh.notify_waiters();
    let mut parser = SseParser::new();
    loop {
        let chunk = match timeout(STREAM_IDLE, bytes.next()).await {
            Err(_) => {
                return Some(ApiError::Unreachable {
                    url: client.base().to_owned(),
                    reason: format!("event stream silent for {}s", STREAM_IDLE.as_secs()),
                });
            }
            Ok(None) => {
                return Some(ApiError::Unreachable {
                    url: client.base().to_owned(),
                    reason: "event stream closed".into(),
                });
            }
            Ok(Some(Err(e))) => return Some(e),
            Ok(Some(Ok(chunk))) => chunk,
        };
        for event in parser.push(&chunk) {
            if let Some(e) = decode(&event)
                && !send(tx, ApiEvent::Stream(e)).await
            {
                return None;
            }
        }
    }
}

/// An `idea` event: the parts the console uses.
#[derive(serde::Deserialize)]
struct IdeaChanged {
    idea_id: String,
    tracking_code: String,
}

/// The events the console understands; others are skipped.
fn decode(e: &SseEvent) -> Option<StreamEvent> {
    let parsed = match e.name.as_str() {
        "bench_state" => serde_json::from_str::<BenchStateEvent>(&e.data).map(StreamEvent::BenchState),
        "telemetry" => serde_json::from_str::<TelemetryEvent>(&e.data).map(StreamEvent::Telemetry),
        "lagged" => serde_json::from_str::<LaggedEvent>(&e.data).map(|l| StreamEvent::Lagged(l.skipped)),
        "idea" => serde_json::from_str::<IdeaChanged>(&e.data).map(|i| StreamEvent::IdeaChanged {
            idea_id: i.idea_id,
            tracking_code: i.tracking_code,
        }),
        "rollout" => serde_json::from_str::<RolloutSummary>(&e.data).map(StreamEvent::RolloutChanged),
        "bench_config" => serde_json::from_str::<BenchConfigStatus>(&e.data).map(StreamEvent::BenchConfig),
        other => {
            tracing::trace!(event = other, "skipping an event this console does not know");
            return None;
        }
    };
    parsed
        .inspect_err(|err| tracing::warn!(event = %e.name, error = %err, "undecodable event"))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_events_decode() {
        let e = SseEvent {
            name: "bench_state".into(),
            data: r#"{"bench_id":"maglaj-01","state":"offline","at":"2026-11-26T10:00:00Z","cause":"last_will"}"#
                .into(),
        };
        match decode(&e) {
            Some(StreamEvent::BenchState(s)) => {
                assert_eq!(s.bench_id, "maglaj-01");
                assert_eq!(s.state, protocol::BenchState::Offline);
            }
            other => panic!("{other:?}"),
        }
        let lagged = SseEvent {
            name: "lagged".into(),
            data: r#"{"skipped":7}"#.into(),
        };
        assert_eq!(decode(&lagged), Some(StreamEvent::Lagged(7)));
        let idea = SseEvent {
            name: "idea".into(),
            data: r#"{"idea_id":"5f0c6f0e-9a51-4c1e-8d3b-2b7c1a9e4f10","tracking_code":"MOS-2026-0042","municipality":"Mostar","at":"2026-11-26T10:00:00Z","action":"approved","from":"held","to":"offered"}"#.into(),
        };
        assert_eq!(
            decode(&idea),
            Some(StreamEvent::IdeaChanged {
                idea_id: "5f0c6f0e-9a51-4c1e-8d3b-2b7c1a9e4f10".into(),
                tracking_code: "MOS-2026-0042".into()
            })
        );
        let rollout = SseEvent {
            name: "rollout".into(),
            data: r#"{"id":"r-1","state":"paused","step":1,"steps":3,"reason":null,"counts":{"healthy":2},"created_by":"ana","created_at":"2026-11-26T09:00:00Z","updated_at":"2026-11-26T09:30:00Z"}"#.into(),
        };
        match decode(&rollout) {
            Some(StreamEvent::RolloutChanged(r)) => {
                assert_eq!((r.id.as_str(), r.state), ("r-1", crate::api::RolloutState::Paused));
            }
            other => panic!("{other:?}"),
        }
        let config = SseEvent {
            name: "bench_config".into(),
            data: r#"{"bench_id":"mostar-01","desired_version":8,"desired":DESIRED,"issued_at":"2026-11-26T09:00:00Z","state":"applied","state_at":"2026-11-26T09:01:00Z","reported_version":8,"reported_at":"2026-11-26T09:01:00Z","error":null,"drift_since":null,"rollout_id":null,"drift_seconds":0,"drifting":false}"#
                .replace("DESIRED", &serde_json::to_string(&protocol::BenchConfig::default()).unwrap()),
        };
        match decode(&config) {
            Some(StreamEvent::BenchConfig(c)) => {
                assert_eq!((c.bench_id.as_str(), c.reported_version), ("mostar-01", Some(8)))
            }
            other => panic!("{other:?}"),
        }
        let future = SseEvent {
            name: "firmware".into(),
            data: "{}".into(),
        };
        assert_eq!(decode(&future), None);
        let broken = SseEvent {
            name: "telemetry".into(),
            data: "{".into(),
        };
        assert_eq!(decode(&broken), None);
    }
}
