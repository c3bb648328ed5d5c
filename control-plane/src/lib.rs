//! benchfleet control plane: an embedded MQTT broker the benches connect to, telemetry ingest
//! into a time-series store, bench presence, and the HTTP API.
//!
//! [`start`] wires the parts together on the caller's tokio runtime and returns the bound
//! addresses; the binary is a thin CLI around it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use protocol::{Fleet, TopicKind};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub mod api;
pub mod audit;
pub mod broker;
#[doc(hidden)]
pub mod fuzzing;
pub mod ingest;
pub mod metrics;
pub mod ota;
pub mod persistence;
pub mod presence;
pub mod routing;
mod seconds;
pub mod settings;
pub mod store;
pub mod telemetry;
pub mod token;

use broker::{BrokerEvent, Inbound};
use ingest::Ingest;
use metrics::{Metrics, ReasonLabel};
use presence::{Input, PresenceTracker};
use settings::Settings;

/// Why the control plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Settings(#[from] settings::SettingsError),
    #[error("fleet file {path}: {source}")]
    Fleet {
        path: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(transparent)]
    Secret(#[from] token::SecretError),
    #[error("store ({url}): {source}")]
    Store { url: String, source: store::StoreError },
    #[error("MQTT broker: {0}")]
    Broker(#[from] broker::BrokerError),
    #[error("OTA configuration: {0}")]
    Ota(#[from] ota::OtaError),
    #[error("idea routing: {0}")]
    Routing(#[from] routing::RoutingError),
    #[error("cannot listen for the API on {addr}: {source}")]
    ApiListen { addr: SocketAddr, source: std::io::Error },
}

/// A started control plane.
pub struct Running {
    pub api_addr: SocketAddr,
    pub mqtt_addr: SocketAddr,
    pub store_mode: store::StoreMode,
    /// OTA configuration: layers, per-bench desired/reported state, rollouts.
    pub ota: ota::Ota,
    /// Idea routing: organisations, rules, ideas.
    pub routing: routing::Routing,
    /// Finishes after `shutdown` is cancelled and everything buffered has been written.
    pub done: JoinHandle<()>,
}

/// Loads the fleet registry the settings name (the built-in LINK 4 fleet by default).
pub fn load_fleet(settings: &Settings) -> Result<Fleet, StartError> {
    let fleet = match &settings.fleet_file {
        None => Fleet::link4(),
        Some(path) => {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| StartError::Fleet {
                path: shown.clone(),
                source: Box::new(e),
            })?;
            Fleet::from_toml(&text).map_err(|e| StartError::Fleet {
                path: shown,
                source: Box::new(e),
            })?
        }
    };
    Ok(fleet.with_load_test_benches(settings.load_test_benches))
}

/// Opens and migrates the store the settings name.
pub async fn open_store(settings: &Settings) -> Result<Arc<dyn store::Store>, StartError> {
    let url = settings.database_url();
    let err = |source| StartError::Store {
        url: store::redact_url(&url),
        source,
    };
    let store = store::connect(&url, &settings.store).await.map_err(err)?;
    store.migrate().await.map_err(err)?;
    Ok(store)
}

/// Starts every part of the control plane. Cancel `shutdown` to stop: the broker closes, queued
/// messages are ingested, buffers are flushed, in-flight API requests finish.
pub async fn start(settings: Settings, shutdown: CancellationToken) -> Result<Running, StartError> {
    settings.validate()?;
    let fleet = Arc::new(load_fleet(&settings)?);
    let secret = token::load_or_create(&settings.jwt_secret_file())?;
    let store = open_store(&settings).await?;
    let store_mode = store.mode();
    let registry: Vec<_> = fleet.iter().cloned().collect();
    store
        .sync_benches(&registry)
        .await
        .map_err(|source| StartError::Store {
            url: store::redact_url(&settings.database_url()),
            source,
        })?;
    tracing::info!(
        store.mode = ?store_mode,
        store.url = %store::redact_url(&settings.database_url()),
        fleet.benches = fleet.len(),
        "store ready"
    );
    let metrics = Arc::new(Metrics::new());
    // Every refusal reason exists from the start, so rates are 0 rather than "no data".
    for reason in broker::DenyReason::ALL {
        let _ = metrics.mqtt_connections_denied.get_or_create(&ReasonLabel {
            reason: reason.as_str(),
        });
    }

    // Each stage has its own stop signal so shutdown can drain them in order.
    let stop_broker = CancellationToken::new();
    let stop_ingest = CancellationToken::new();
    let stop_presence = CancellationToken::new();

    let (presence, presence_task) = PresenceTracker::start(
        &fleet,
        &settings.presence,
        store.clone(),
        metrics.clone(),
        stop_presence.clone(),
    )
    .await
    .map_err(|source| StartError::Store {
        url: store::redact_url(&settings.database_url()),
        source,
    })?;

    let broker = broker::start(
        settings.mqtt.clone(),
        broker::Authenticator::new(fleet.clone(), secret.clone()),
        stop_broker.clone(),
    )
    .await?;
    let mqtt_addr = broker.local_addr;
    let handle = broker.handle.clone();
    // Each committed batch is acknowledged to the benches that listen for it.
    let (ingest, ingest_task) = Ingest::spawn(
        store.clone(),
        settings.ingest.clone(),
        metrics.clone(),
        Arc::new(ingest::BrokerAcks {
            broker: handle.clone(),
            metrics: metrics.clone(),
        }),
        stop_ingest.clone(),
    );
    let stop_rollups = CancellationToken::new();
    let rollups_task = telemetry::rollups::spawn(
        store.clone(),
        Duration::from_millis(settings.store.rollup_interval_ms.max(1)),
        stop_rollups.clone(),
    );
    // Right after the broker: it keeps retained messages only in memory, so every bench's desired
    // configuration is published again before benches (re)connect.
    let stop_ota = CancellationToken::new();
    let (ota, ota_task) = ota::Ota::start(
        fleet.clone(),
        settings.ota.clone(),
        store.clone(),
        Arc::new(handle.clone()),
        Arc::new(ota::FleetObserver {
            presence: presence.clone(),
            metrics: metrics.clone(),
        }),
        metrics.clone(),
        stop_ota.clone(),
    )
    .await?;
    let stop_routing = CancellationToken::new();
    let (routing, routing_task) = routing::Routing::start(
        fleet.clone(),
        settings.ideas.clone(),
        store.clone(),
        Arc::new(handle.clone()),
        Arc::new(routing::SystemClock),
        metrics.clone(),
        stop_routing.clone(),
    )
    .await?;
    let dispatch_task = tokio::spawn(dispatch(
        handle.clone(),
        broker.events,
        broker.inbound,
        Consumers {
            quota: broker::quota::BenchQuota::new(
                settings.mqtt.bench_messages_per_s,
                settings.mqtt.bench_message_burst,
            ),
            ingest: ingest.clone(),
            presence: presence.clone(),
            ota: ota.clone(),
            routing: routing.clone(),
        },
        metrics.clone(),
    ));

    let listener = tokio::net::TcpListener::bind(settings.api.listen)
        .await
        .map_err(|source| StartError::ApiListen {
            addr: settings.api.listen,
            source,
        })?;
    let api_addr = listener.local_addr().map_err(|source| StartError::ApiListen {
        addr: settings.api.listen,
        source,
    })?;
    let state = api::AppState {
        store,
        metrics,
        presence,
        ingest,
        broker: Arc::new(handle),
        fleet,
        secret,
        config: settings.api.clone(),
        shutdown: shutdown.clone(),
        ota: ota.clone(),
        routing: routing.clone(),
    };
    let api_shutdown = shutdown.clone();
    let api_task = tokio::spawn(async move {
        // Client addresses key the public routes' rate limit.
        let app = api::app(state).into_make_service_with_connect_info::<SocketAddr>();
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { api_shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "API server failed");
        }
    });
    tracing::info!(api.addr = %api_addr, mqtt.addr = %mqtt_addr, "control plane listening");

    let done = tokio::spawn(async move {
        shutdown.cancelled().await;
        tracing::info!("shutting down: closing the broker, then flushing buffers");
        stop_broker.cancel();
        if tokio::time::timeout(Duration::from_secs(10), dispatch_task)
            .await
            .is_err()
        {
            tracing::warn!("broker messages still queued after 10 s; ingesting what arrived");
        }
        stop_ota.cancel();
        let _ = ota_task.await;
        stop_routing.cancel();
        let _ = routing_task.await;
        stop_ingest.cancel();
        let _ = ingest_task.await;
        stop_rollups.cancel();
        let _ = rollups_task.await;
        stop_presence.cancel();
        let _ = presence_task.await;
        let _ = api_task.await;
        tracing::info!("stopped");
    });
    Ok(Running {
        api_addr,
        mqtt_addr,
        store_mode,
        ota,
        routing,
        done,
    })
}

/// Where bench messages go.
struct Consumers {
    /// Applied before any of the others sees a message.
    quota: broker::quota::BenchQuota,
    ingest: Ingest,
    presence: PresenceTracker,
    ota: ota::Ota,
    routing: routing::Routing,
}

/// Routes broker events and bench messages to presence, ingest, OTA and idea routing. Ends when
/// the broker closes.
async fn dispatch(
    broker: broker::BrokerHandle,
    mut events: tokio::sync::mpsc::UnboundedReceiver<BrokerEvent>,
    mut inbound: tokio::sync::mpsc::Receiver<Inbound>,
    to: Consumers,
    metrics: Arc<Metrics>,
) {
    let mut events_open = true;
    let mut losses = tokio::time::interval(Duration::from_secs(1));
    let (mut queue_full, mut overrun) = (0, 0);
    loop {
        tokio::select! {
            _ = losses.tick() => {
                metrics.flush_drop_log(std::time::Instant::now());
                // The broker counts what it could not hand over; mirror it into the metrics.
                let (q, o) = (broker.dropped_inbound(), broker.skipped_inbound());
                metrics.mqtt_messages_dropped.get_or_create(&ReasonLabel { reason: metrics::DROP_QUEUE_FULL }).inc_by(q - queue_full.min(q));
                metrics.mqtt_messages_dropped.get_or_create(&ReasonLabel { reason: metrics::DROP_LINK_OVERRUN }).inc_by(o - overrun.min(o));
                (queue_full, overrun) = (q, o);
            }
            ev = events.recv(), if events_open => match ev {
                Some(ev) => on_event(ev, &to.presence, &metrics),
                None => events_open = false,
            },
            msg = inbound.recv() => match msg {
                Some(msg) => on_message(msg, &to, &metrics),
                None => break,
            },
        }
    }
    while let Ok(ev) = events.try_recv() {
        on_event(ev, &to.presence, &metrics);
    }
}

fn on_event(ev: BrokerEvent, presence: &PresenceTracker, metrics: &Metrics) {
    match ev {
        // The broker logs connections, refusals and violations itself; here they become presence
        // and metrics.
        BrokerEvent::Connected { bench, conn } => {
            metrics.mqtt_connections.inc();
            presence.apply(bench.as_str(), Input::Connected { conn });
        }
        BrokerEvent::Disconnected { bench, conn, .. } => {
            metrics.mqtt_connections.dec();
            presence.apply(bench.as_str(), Input::Disconnected { conn });
        }
        BrokerEvent::Denied { client_id, reason } => {
            metrics.connection_denied(&client_id, reason.as_str(), std::time::Instant::now());
        }
        BrokerEvent::AclViolation { .. } => {
            metrics.mqtt_acl_violations.inc();
        }
    }
}

/// A telemetry sample: ingested, and only once accepted, counted as a sign of life.
fn on_telemetry(
    ingest: &Ingest,
    presence: &PresenceTracker,
    bench: &str,
    payload: &[u8],
    received_at: chrono::DateTime<chrono::Utc>,
) {
    if ingest::telemetry(ingest, bench, payload, received_at).is_ok() {
        presence.apply(bench, Input::Telemetry);
    }
}

fn on_message(msg: Inbound, to: &Consumers, metrics: &Metrics) {
    let Consumers {
        quota,
        ingest,
        presence,
        ota,
        routing,
    } = to;
    let bench = msg.topic.bench.as_str();
    metrics.received(msg.topic.kind);
    if !quota.allows(&msg.topic.bench) {
        let detail = "over the bench's message quota ([mqtt] bench_messages_per_s, bench_message_burst)";
        metrics.payload_dropped(bench, msg.topic.kind.label(), metrics::DROP_RATE_LIMITED, &detail);
        return;
    }
    match msg.topic.kind {
        TopicKind::Telemetry => on_telemetry(ingest, presence, bench, &msg.payload, msg.received_at),
        TopicKind::Status => match protocol::Status::decode(&msg.payload) {
            Ok(status) => {
                if let Some(version) = status.config_version {
                    ota.on_status(&msg.topic.bench, version);
                }
                presence.apply(bench, Input::Status(status));
            }
            Err(rejection) => {
                metrics.payload_dropped(bench, "status", rejection.reason.label(), &rejection.detail);
            }
        },
        TopicKind::ConfigAck => ota.on_ack(&msg.topic.bench, &msg.payload),
        TopicKind::Ideas => routing.on_idea(&msg.topic.bench, msg.payload, msg.received_at),
        TopicKind::Config | TopicKind::IdeasAck | TopicKind::TelemetryAck => {
            metrics.dropped(protocol::RejectReason::UnknownTopic.label());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A sample the full ingest buffer refuses is not a sign of life either.
    #[tokio::test]
    async fn a_refused_sample_does_not_update_presence() {
        let db = store::testing::sqlite_database();
        let store = store::connect(db.url(), &Default::default()).await.unwrap();
        store.migrate().await.unwrap();
        let metrics = Arc::new(Metrics::new());
        let stop = CancellationToken::new();
        let settings = Settings::default();
        let ingest_settings = ingest::IngestSettings {
            batch_size: 500,
            flush_interval_ms: 600_000,
            buffer_rows: 1,
            buffer_bytes: usize::MAX,
        };
        let (ingest, _ingest_task) = Ingest::spawn(
            store.clone(),
            ingest_settings,
            metrics.clone(),
            Arc::new(ingest::NoAcks),
            stop.clone(),
        );
        let fleet = Fleet::link4();
        let (presence, _presence_task) =
            PresenceTracker::start(&fleet, &settings.presence, store.clone(), metrics, stop.clone())
                .await
                .unwrap();
        let sample = |seq: u64| {
            format!(
                r#"{{"v":1,"ts":"{}","seq":{seq},"power":{{"solar_w":40.0,"battery_pct":80.0}}}}"#,
                chrono::Utc::now().to_rfc3339()
            )
        };
        on_telemetry(
            &ingest,
            &presence,
            "mostar-01",
            sample(1).as_bytes(),
            chrono::Utc::now(),
        );
        on_telemetry(&ingest, &presence, "zepce-01", sample(1).as_bytes(), chrono::Utc::now());
        assert!(presence.get("mostar-01").unwrap().last_seen.is_some());
        assert_eq!(
            presence.get("zepce-01").unwrap().last_seen,
            None,
            "the buffer refused zepce-01's sample"
        );
        stop.cancel();
    }
}
