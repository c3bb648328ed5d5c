//! `/api/v1/events`: live changes as Server-Sent Events.
//!
//! Each client gets its own bounded subscriptions to presence changes and accepted telemetry
//! (`tokio::sync::broadcast`). A client that reads too slowly does not grow a buffer: the oldest
//! events are dropped for it and it receives a `lagged` event saying how many. Streams end when
//! the control plane shuts down, so graceful shutdown does not wait on them.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use protocol::api::{BenchStateEvent, LaggedEvent, NoParams, TelemetryEvent};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::auth::{Authorized, WatchEvents};
use super::openapi::describe;
use super::problem::QueryParams;
use crate::presence::StatusEvent;
use crate::telemetry::TelemetryRow;

/// SSE event names.
pub const BENCH_STATE: &str = "bench_state";
pub const TELEMETRY: &str = "telemetry";
pub const LAGGED: &str = "lagged";
pub const BENCH_CONFIG: &str = "bench_config";
pub const ROLLOUT: &str = "rollout";
pub const IDEA: &str = "idea";

/// The live event stream.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(NoParams),
    security(("bearer" = [])),
    description = describe::<WatchEvents>(
        "A `text/event-stream` of live changes. Events: `bench_state` (a `BenchStateEvent`: a \
         bench's presence changed), `telemetry` (a `TelemetryEvent`: a bench sent a sample), and \
         `lagged` (a `LaggedEvent`: this client read too slowly and `skipped` events were dropped \
         for it; refetch state with `GET /api/v1/benches`), `bench_config` (a `BenchConfigStatus`: \
         a bench's desired/reported configuration or delivery state changed) and `rollout` (a \
         `RolloutSummary`: a rollout advanced, paused, completed or aborted) and `idea` (an \
         `IdeaChange`: an idea was received, routed, confirmed… without its text). Idle streams get a \
         comment line every 15 s."
    ),
    responses((status = 200, description = "The event stream", content_type = "text/event-stream", body = String))
)]
pub(super) async fn stream(
    _: Authorized<WatchEvents>,
    State(s): State<AppState>,
    QueryParams(NoParams {}): QueryParams<NoParams>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // Subscribe now, not when the body is first polled: nothing after the response is lost.
    let live = Live {
        states: s.presence.subscribe(),
        samples: s.ingest.subscribe(),
        ota: s.ota.subscribe(),
        ideas: s.routing.subscribe(),
        shutdown: s.shutdown.clone(),
    };
    let events = futures::stream::unfold(live, |mut live| async move {
        let event = live.next().await?;
        Some((Ok(event), live))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(s.config.events_keep_alive))
}

struct Live {
    states: Receiver<StatusEvent>,
    samples: Receiver<TelemetryRow>,
    ota: Receiver<crate::ota::OtaEvent>,
    ideas: Receiver<crate::routing::IdeaChange>,
    shutdown: CancellationToken,
}

impl Live {
    /// The next event, or `None` when the stream should end.
    async fn next(&mut self) -> Option<Event> {
        tokio::select! {
            // State changes first: they are rarer and matter more than samples.
            biased;
            () = self.shutdown.cancelled() => None,
            r = self.states.recv() => match r {
                Ok(e) => Some(json_event(BENCH_STATE, &BenchStateEvent {
                    bench_id: e.bench_id,
                    state: e.state,
                    at: e.at,
                    cause: e.cause,
                    until: e.until,
                })),
                Err(RecvError::Lagged(skipped)) => Some(lagged(skipped)),
                Err(RecvError::Closed) => None,
            },
            r = self.samples.recv() => match r {
                Ok(row) => Some(json_event(TELEMETRY, &telemetry_event(row))),
                Err(RecvError::Lagged(skipped)) => Some(lagged(skipped)),
                Err(RecvError::Closed) => None,
            },
            r = self.ota.recv() => match r {
                Ok(crate::ota::OtaEvent::BenchConfig(status)) => {
                    Some(json_event(BENCH_CONFIG, &protocol::ota::BenchConfigStatus::from(status)))
                }
                Ok(crate::ota::OtaEvent::Rollout(summary)) => {
                    Some(json_event(ROLLOUT, &protocol::ota::RolloutSummary::from(summary)))
                }
                Err(RecvError::Lagged(skipped)) => Some(lagged(skipped)),
                Err(RecvError::Closed) => None,
            },
            r = self.ideas.recv() => match r {
                Ok(change) => Some(json_event(IDEA, &change)),
                Err(RecvError::Lagged(skipped)) => Some(lagged(skipped)),
                Err(RecvError::Closed) => None,
            },
        }
    }
}

fn lagged(skipped: u64) -> Event {
    tracing::debug!(events.skipped = skipped, "event stream client lagging");
    json_event(LAGGED, &LaggedEvent { skipped })
}

fn json_event(name: &'static str, data: &impl serde::Serialize) -> Event {
    Event::default()
        .event(name)
        .data(serde_json::to_string(data).unwrap_or_default())
}

fn telemetry_event(r: TelemetryRow) -> TelemetryEvent {
    let active = [r.sessions_wifi, r.sessions_usb, r.sessions_kiosk]
        .into_iter()
        .flatten()
        .map(|n| u32::try_from(n).unwrap_or(0))
        .fold(0_u32, u32::saturating_add);
    TelemetryEvent {
        bench_id: r.bench_id,
        ts: r.ts,
        solar_w: r.solar_w,
        battery_pct: r.battery_pct,
        sessions_active: active,
        wifi_clients: r.wifi_clients.and_then(|n| u32::try_from(n).ok()),
        faults: r.faults,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::http::{StatusCode, header};
    use chrono::Utc;
    use http_body_util::BodyExt;
    use protocol::{Role, Status};
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;
    use crate::api::testing::{Harness, on_both_backends, request};
    use crate::ingest::LIVE_CAPACITY;
    use crate::presence::Input;

    /// Reads SSE events off a response body.
    struct Events {
        body: Body,
        buffer: String,
    }

    impl Events {
        async fn open(h: &Harness) -> Self {
            let response = h
                .app()
                .oneshot(request("/api/v1/events", Some(Role::Viewer)))
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()[header::CONTENT_TYPE], "text/event-stream");
            Self {
                body: response.into_body(),
                buffer: String::new(),
            }
        }

        /// The next event's name and data; `None` when the stream ended.
        async fn next(&mut self) -> Option<(String, Value)> {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let block: String = self.buffer.drain(..end + 2).collect();
                    let (mut name, mut data) = (None, None);
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("event: ") {
                            name = Some(v.to_owned());
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data = Some(serde_json::from_str(v).unwrap());
                        }
                    }
                    match (name, data) {
                        (Some(name), Some(data)) => return Some((name, data)),
                        _ => continue, // a keep-alive comment
                    }
                }
                let frame = tokio::time::timeout(Duration::from_secs(20), self.body.frame())
                    .await
                    .expect("an event within 20 s");
                match frame {
                    None => return None,
                    Some(frame) => {
                        if let Ok(data) = frame.unwrap().into_data() {
                            self.buffer.push_str(std::str::from_utf8(&data).unwrap());
                        }
                    }
                }
            }
        }
    }

    fn sample(seq: u64, solar: f64) -> Vec<u8> {
        format!(
            r#"{{"v":1,"ts":"2026-11-26T10:00:{:02}Z","seq":{seq},"power":{{"solar_w":{solar},"battery_pct":80}},
               "network":{{"wifi_clients":3}},"sessions":{{"wifi":2,"usb":1}},"health":{{"faults":["door_open"]}}}}"#,
            seq % 60
        )
        .into_bytes()
    }

    async fn live_changes(h: &Harness) {
        let mut events = Events::open(h).await;
        h.state.presence.apply("mostar-01", Input::Connected { conn: 7 });
        crate::ingest::telemetry(&h.state.ingest, "mostar-01", &sample(1, 42.5), Utc::now()).unwrap();
        h.state.presence.apply("mostar-01", Input::Status(Status::last_will()));
        h.state.presence.apply("mostar-01", Input::Disconnected { conn: 7 });

        let (name, data) = events.next().await.unwrap();
        assert_eq!(name, BENCH_STATE);
        assert_eq!(
            (data["bench_id"].as_str(), data["state"].as_str()),
            (Some("mostar-01"), Some("online"))
        );
        assert_eq!(data["cause"], "connected");
        // State changes are delivered before samples that queued at the same time.
        let (name, data) = events.next().await.unwrap();
        assert_eq!((name.as_str(), data["state"].as_str()), (BENCH_STATE, Some("offline")));
        assert_eq!(data["cause"], "disconnected");
        let (name, data) = events.next().await.unwrap();
        assert_eq!(name, TELEMETRY);
        assert_eq!(
            data,
            serde_json::json!({"bench_id": "mostar-01", "ts": "2026-11-26T10:00:01Z", "solar_w": 42.5,
                               "battery_pct": 80.0, "sessions_active": 3, "wifi_clients": 3,
                               "faults": ["door_open"]})
        );

        // Shutdown ends the stream, so graceful shutdown does not wait for clients.
        h.state.shutdown.cancel();
        assert_eq!(events.next().await, None);
    }

    on_both_backends!(live_changes);

    #[tokio::test]
    async fn a_slow_client_is_told_it_lagged() {
        let h = Harness::sqlite().await;
        let mut events = Events::open(&h).await;
        // The client reads nothing while more samples arrive than its queue holds.
        let sent = LIVE_CAPACITY as u64 + 10;
        for seq in 1..=sent {
            crate::ingest::telemetry(&h.state.ingest, "maglaj-01", &sample(seq, 1.0), Utc::now()).unwrap();
        }
        let (name, data) = events.next().await.unwrap();
        assert_eq!((name.as_str(), data["skipped"].as_u64()), (LAGGED, Some(10)));
        // Then it resumes with the oldest sample still held: the 11th.
        let (name, data) = events.next().await.unwrap();
        assert_eq!(
            (name.as_str(), data["ts"].as_str()),
            (TELEMETRY, Some("2026-11-26T10:00:11Z"))
        );
        h.flushed().await;
        h.stop().await;
    }
}
