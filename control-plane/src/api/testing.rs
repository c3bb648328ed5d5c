//! The handler-test harness: the real router over a real store (SQLite or PostgreSQL), real
//! ingest and presence, requests through `tower::ServiceExt::oneshot`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use bytes::Bytes;
use http_body_util::BodyExt;
use protocol::token::Secret;
use protocol::{Claims, Fleet, Role};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::{ApiConfig, AppState, BrokerStatus};
use crate::ingest::{Ingest, IngestSettings};
use crate::metrics::Metrics;
use crate::presence::{PresenceSettings, PresenceTracker};
use crate::store::testing::{PgDatabase, SqliteDatabase, pg_database, sqlite_database};
use crate::store::{Store, connect};

/// A broker that is not there: the API only asks it for readiness.
#[derive(Debug, Default)]
pub struct FakeBroker {
    pub listening: AtomicBool,
}

impl BrokerStatus for FakeBroker {
    fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    fn connections(&self) -> usize {
        usize::from(self.is_listening())
    }
}

/// Configuration documents OTA published, in order (instead of a broker).
#[derive(Debug, Default)]
pub struct Published(pub std::sync::Mutex<Vec<(protocol::BenchId, protocol::ConfigDocument)>>);

impl crate::ota::Publisher for Published {
    fn publish_config(&self, bench: &protocol::BenchId, payload: Bytes) -> Result<(), crate::broker::BrokerError> {
        let doc = serde_json::from_slice(&payload).map_err(|_| crate::broker::BrokerError::Stopped)?;
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((bench.clone(), doc));
        Ok(())
    }
}

/// Idea acks the routing service sent kiosks, in order (instead of a broker).
#[derive(Debug, Default)]
pub struct Acks(pub std::sync::Mutex<Vec<(protocol::BenchId, protocol::IdeaAck)>>);

impl crate::routing::AckSender for Acks {
    fn send_ack(&self, bench: &protocol::BenchId, ack: &protocol::IdeaAck) -> Result<(), crate::broker::BrokerError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((bench.clone(), ack.clone()));
        Ok(())
    }
}

enum Database {
    Sqlite(#[allow(dead_code)] SqliteDatabase),
    Postgres(#[allow(dead_code)] PgDatabase),
}

/// A control plane without MQTT, and a client for its API.
pub struct Harness {
    pub state: AppState,
    pub broker: Arc<FakeBroker>,
    /// What OTA sent benches.
    pub published: Arc<Published>,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    // Last: the database outlives the tasks using it.
    _db: Database,
}

/// The label of a backend in assertion messages.
pub type Backend = &'static str;

impl Harness {
    pub async fn sqlite() -> Self {
        let db = sqlite_database();
        let url = db.url().to_owned();
        Self::on(&url, Database::Sqlite(db)).await
    }

    /// `None` when PostgreSQL is not configured (see `store::testing::pg_database`).
    pub async fn postgres() -> Option<Self> {
        let db = pg_database().await?;
        let url = db.url().to_owned();
        Some(Self::on(&url, Database::Postgres(db)).await)
    }

    async fn on(url: &str, db: Database) -> Self {
        let store: Arc<dyn Store> = connect(url, &Default::default()).await.unwrap();
        store.migrate().await.unwrap();
        let fleet = Arc::new(Fleet::link4());
        let registry: Vec<_> = fleet.iter().cloned().collect();
        store.sync_benches(&registry).await.unwrap();
        let metrics = Arc::new(Metrics::new());
        let stop = CancellationToken::new();
        let ingest_settings = IngestSettings {
            flush_interval_ms: 10,
            ..IngestSettings::default()
        };
        let (ingest, ingest_task) = Ingest::spawn(
            store.clone(),
            ingest_settings,
            metrics.clone(),
            Arc::new(crate::ingest::NoAcks),
            stop.clone(),
        );
        // Handler tests drive presence by hand: a disconnect counts at once, without a grace.
        let presence_settings = PresenceSettings {
            takeover_grace_ms: 0,
            ..PresenceSettings::default()
        };
        let (presence, presence_task) =
            PresenceTracker::start(&fleet, &presence_settings, store.clone(), metrics.clone(), stop.clone())
                .await
                .unwrap();
        let broker = Arc::new(FakeBroker::default());
        broker.listening.store(true, Ordering::Relaxed);
        let published = Arc::new(Published::default());
        let ota_settings = crate::ota::OtaSettings {
            tick: Duration::from_millis(20),
            ..crate::ota::OtaSettings::default()
        };
        let (ota, ota_task) = crate::ota::Ota::start(
            fleet.clone(),
            ota_settings,
            store.clone(),
            published.clone(),
            Arc::new(crate::ota::FleetObserver {
                presence: presence.clone(),
                metrics: metrics.clone(),
            }),
            metrics.clone(),
            stop.clone(),
        )
        .await
        .unwrap();
        // Without the routing task: tests submit ideas and fire deadlines themselves.
        let (routing, _inputs) = crate::routing::Routing::load(
            fleet.clone(),
            crate::routing::RoutingSettings::default(),
            store.clone(),
            Arc::new(Acks::default()),
            Arc::new(crate::routing::SystemClock),
            metrics.clone(),
        )
        .await
        .unwrap();
        let state = AppState {
            store,
            metrics,
            presence,
            ingest,
            broker: broker.clone(),
            fleet,
            secret: secret(),
            config: ApiConfig::default(),
            shutdown: stop.clone(),
            ota,
            routing,
        };
        Self {
            state,
            broker,
            published,
            stop,
            tasks: vec![ingest_task, presence_task, ota_task],
            _db: db,
        }
    }

    pub fn backend(&self) -> Backend {
        match self._db {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }

    pub fn app(&self) -> Router {
        super::app(self.state.clone())
    }

    pub fn store(&self) -> &dyn Store {
        self.state.store.as_ref()
    }

    /// Sends a request, returns status, headers and the whole body.
    pub async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
        let response = self.app().oneshot(req).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = tokio::time::timeout(Duration::from_secs(20), body.collect())
            .await
            .expect("response body within 20 s")
            .unwrap()
            .to_bytes();
        (parts.status, parts.headers, bytes)
    }

    /// `GET uri` with a token of `role` (none when `None`).
    pub async fn get(&self, uri: &str, role: Option<Role>) -> (StatusCode, HeaderMap, Bytes) {
        self.send(request(uri, role)).await
    }

    /// `GET uri` as `role`, the body parsed as JSON.
    pub async fn get_json(&self, uri: &str, role: Role) -> (StatusCode, serde_json::Value) {
        let (status, _, body) = self.get(uri, Some(role)).await;
        let json = serde_json::from_slice(&body)
            .unwrap_or_else(|e| panic!("{uri}: body is not JSON ({e}): {}", String::from_utf8_lossy(&body)));
        (status, json)
    }

    /// Waits until the ingest buffer is empty (every submitted row stored).
    pub async fn flushed(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.state.ingest.buffered() > 0 || self.state.presence.unwritten() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "ingest did not flush within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the tasks and waits for them.
    pub async fn stop(mut self) {
        self.stop.cancel();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }
}

/// The secret the harness signs and verifies with.
pub fn secret() -> Secret {
    Secret::new(b"api-tests-0123456789abcdef0123456789".to_vec())
}

/// A valid token of `role`.
pub fn token(role: Role) -> String {
    let claims = Claims::new(role, format!("test-{role}"), Duration::from_secs(600));
    let claims = if role == Role::Cso {
        claims.with_org("lda-mostar")
    } else {
        claims
    };
    secret().sign(&claims)
}

/// `GET uri`, with a bearer token of `role` when given.
pub fn request(uri: &str, role: Option<Role>) -> Request<Body> {
    request_with("GET", uri, role)
}

/// A request with `method` to `uri`, with a valid token for `role` (none: anonymous).
pub fn request_with(method: &str, uri: &str, role: Option<Role>) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(role) = role {
        req = req.header(header::AUTHORIZATION, format!("Bearer {}", token(role)));
    }
    req.body(Body::empty()).unwrap()
}

/// Runs an async scenario `fn(&Harness)` on SQLite and, when configured, PostgreSQL.
macro_rules! on_both_backends {
    ($scenario:ident) => {
        mod $scenario {
            #[tokio::test]
            async fn sqlite() {
                let h = $crate::api::testing::Harness::sqlite().await;
                super::$scenario(&h).await;
                h.stop().await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(h) = $crate::api::testing::Harness::postgres().await else {
                    return;
                };
                super::$scenario(&h).await;
                h.stop().await;
            }
        }
    };
}

pub(crate) use on_both_backends;
