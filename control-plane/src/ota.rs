//! Over-the-air configuration: which configuration every bench should run, which it does run,
//! and why they differ.
//!
//! - [`layers`]: fleet default, municipality and bench layers merged into a bench's effective
//!   configuration; per-field validation; diffs.
//! - [`delivery`]: per bench desired/reported version and delivery state
//!   (`pending → delivered → applied`, or `rejected` / `timed_out`), drift.
//! - [`rollout`]: staged rollouts with canary, batches, soak, health gates and automatic rollback.
//! - [`engine`]: the state in memory and how each change is planned; [`records`]: what is stored.
//! - [`view`]: the state as the API shows it, converted into [`protocol::ota`]'s types.
//!
//! [`Ota`] is the handle the rest of the control plane uses. Every change is written to the
//! store (one transaction) before it is applied in memory and before any document is
//! published, so a restart resumes exactly where the control plane stopped: [`Ota::start`]
//! re-publishes every bench's desired document retained (rumqttd keeps retained messages only
//! in memory) and active rollouts continue.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use protocol::config::{AckStatus, ConfigAck, FieldError};
use protocol::{BenchId, BenchState, Fleet, Topic, TopicKind};
use serde_json::Value;
use tokio::sync::{Mutex, broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::broker::{BrokerError, BrokerHandle};
use crate::metrics::{BenchLabel, Metrics, StatusLabel};
use crate::persistence::StoreError;
use crate::presence::PresenceTracker;

pub mod delivery;
pub mod engine;
pub mod layers;
pub mod records;
pub mod rollout;
pub mod view;

pub use delivery::{BenchConfigRecord, DeliveryState};
pub use layers::{FieldChange, Scope};
pub use protocol::ota::{BenchDiff, EffectiveConfig, RolloutPreview};
pub use records::{AuditEntry, IssuedVersion, LayerRecord, OtaStore, OtaWrite};
pub use rollout::{Progress, Rollout, RolloutRequest, RolloutState, Strategy, Target};

use engine::{Engine, Plan};

/// Why an OTA operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OtaError {
    /// The configuration (or rollout request) is invalid; one entry per bad field.
    #[error("invalid configuration: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    #[error("no bench {0:?} in the registry")]
    UnknownBench(String),
    #[error("no bench of the registry is in municipality {0:?}")]
    UnknownMunicipality(String),
    #[error("no rollout {0:?}")]
    UnknownRollout(String),
    /// The change collides with the state (an active rollout, a layer changed since).
    #[error("{0}")]
    Conflict(String),
    #[error("the change alters no bench's configuration")]
    NoChange,
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Timing of delivery tracking: the `[ota]` settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct OtaSettings {
    /// A configuration the bench has been handed (it connected since it was issued) but has not
    /// acknowledged within this many seconds is reported `timed_out` (a late acknowledgement
    /// still counts).
    #[serde(rename = "ack_timeout_s", with = "crate::seconds")]
    #[schemars(with = "u64")]
    pub ack_timeout: Duration,
    /// Desired and reported configuration versions differing for longer than this many seconds
    /// is reported as drift by the API (`benchfleet_bench_config_drift_seconds` always shows the
    /// duration).
    #[serde(rename = "drift_threshold_s", with = "crate::seconds")]
    #[schemars(with = "u64")]
    pub drift_threshold: Duration,
    /// How often delivery states, rollouts and drift are re-evaluated (not configurable).
    #[serde(skip)]
    pub tick: Duration,
}

impl Default for OtaSettings {
    fn default() -> Self {
        Self {
            ack_timeout: Duration::from_secs(120),
            drift_threshold: Duration::from_secs(600),
            tick: Duration::from_secs(1),
        }
    }
}

/// Sends a bench its configuration document (retained).
pub trait Publisher: Send + Sync + 'static {
    fn publish_config(&self, bench: &BenchId, payload: Bytes) -> Result<(), BrokerError>;
}

impl Publisher for BrokerHandle {
    fn publish_config(&self, bench: &BenchId, payload: Bytes) -> Result<(), BrokerError> {
        let topic = Topic::new(bench.clone(), TopicKind::Config).to_string();
        self.publish(&topic, payload, true)
    }
}

/// What OTA needs to know about benches from the rest of the control plane.
pub trait Observer: Send + Sync + 'static {
    /// The bench's presence now.
    fn presence(&self, bench: &BenchId) -> BenchState;
    /// Active faults in its newest telemetry.
    fn faults(&self, bench: &BenchId) -> Option<u64>;
    /// The bench applied a configuration with this telemetry interval.
    fn interval_applied(&self, bench: &BenchId, interval: Duration);
}

/// The production [`Observer`]: presence from the tracker, faults from the per-bench gauge the
/// telemetry path keeps current.
pub struct FleetObserver {
    pub presence: PresenceTracker,
    pub metrics: Arc<Metrics>,
}

impl Observer for FleetObserver {
    fn presence(&self, bench: &BenchId) -> BenchState {
        self.presence
            .get(bench.as_str())
            .map_or(BenchState::NeverSeen, |p| p.state)
    }

    fn faults(&self, bench: &BenchId) -> Option<u64> {
        let label = BenchLabel {
            bench: bench.to_string(),
        };
        u64::try_from(self.metrics.bench_faults.get_or_create(&label).get()).ok()
    }

    fn interval_applied(&self, bench: &BenchId, interval: Duration) {
        self.presence.set_interval(bench.as_str(), interval);
    }
}

/// One bench's configuration status: its record and how long it has drifted. The API shows
/// [`protocol::ota::BenchConfigStatus`] ([`view`]).
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfigStatus {
    pub record: BenchConfigRecord,
    /// Seconds desired and reported have differed (0 in sync).
    pub drift_seconds: u64,
    /// Whether they have differed for longer than the drift threshold.
    pub drifting: bool,
}

/// A rollout in brief, for lists and events. The API shows [`protocol::ota::RolloutSummary`].
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutSummary {
    pub id: String,
    pub state: RolloutState,
    pub step: usize,
    pub steps: usize,
    pub reason: Option<String>,
    /// Benches per progress state.
    pub counts: BTreeMap<Progress, usize>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&Rollout> for RolloutSummary {
    fn from(r: &Rollout) -> Self {
        Self {
            id: r.id.clone(),
            state: r.state,
            step: r.step,
            steps: r.steps,
            reason: r.reason.clone(),
            counts: r.counts(),
            created_by: r.created_by.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A change worth telling live clients (the SSE stream) about.
#[derive(Debug, Clone, PartialEq)]
pub enum OtaEvent {
    BenchConfig(BenchConfigStatus),
    Rollout(RolloutSummary),
}

/// Bench input waiting for the OTA task.
#[derive(Debug, Clone)]
enum Input {
    Ack { bench: BenchId, ack: ConfigAck },
    Reported { bench: BenchId, version: u64 },
}

/// Acknowledgements and status reports queued for the OTA task; beyond it they are dropped
/// (counted as `queue_full`) and the next status or reconnect repeats them.
const INPUT_CAPACITY: usize = 10_000;
/// Inputs kept for retry while the store refuses writes.
const MAX_RETRY: usize = 10_000;
/// How long startup waits for the broker's outbound queue to take every document.
const STARTUP_PUBLISH_DEADLINE: Duration = Duration::from_secs(30);

struct State {
    engine: Engine,
    /// Benches whose desired document the broker did not take; retried every tick.
    unpublished: BTreeSet<BenchId>,
}

struct Shared {
    state: Mutex<State>,
    store: Arc<dyn OtaStore>,
    publisher: Arc<dyn Publisher>,
    observer: Arc<dyn Observer>,
    metrics: Arc<Metrics>,
    settings: OtaSettings,
    inputs: mpsc::Sender<Input>,
    events: broadcast::Sender<OtaEvent>,
}

/// The OTA configuration service. Cheap to clone.
#[derive(Clone)]
pub struct Ota {
    shared: Arc<Shared>,
}

impl Ota {
    /// Loads the state from the store, issues first versions to new benches (and new versions
    /// where the effective configuration changed), publishes every bench's desired document
    /// retained, and starts the task that tracks acknowledgements, delivery and rollouts.
    pub async fn start(
        fleet: Arc<Fleet>,
        settings: OtaSettings,
        store: Arc<dyn OtaStore>,
        publisher: Arc<dyn Publisher>,
        observer: Arc<dyn Observer>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Result<(Self, JoinHandle<()>), OtaError> {
        let now = Utc::now();
        let mut engine = Engine::new(
            fleet.clone(),
            store.ota_layers().await?,
            store.ota_bench_configs().await?,
            store.ota_rollouts().await?,
        );
        for r in engine.rollouts.values_mut().filter(|r| r.state.is_active()) {
            info!(rollout.id = %r.id, rollout.state = r.state.as_str(), rollout.step = r.step, "resuming rollout");
            r.restore(now);
        }
        let mut plan = engine.plan_startup(now);
        // Published below with everything else.
        plan.publish.clear();
        if !plan.is_empty() {
            store.ota_write(&plan.write).await?;
            engine.apply(&plan.write);
            info!(
                ota.issued = plan.write.versions.len(),
                "issued configuration versions at startup"
            );
        }
        let (inputs, inputs_rx) = mpsc::channel(INPUT_CAPACITY);
        let (events, _) = broadcast::channel(256);
        let ota = Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    engine,
                    unpublished: BTreeSet::new(),
                }),
                store,
                publisher,
                observer,
                metrics,
                settings,
                inputs,
                events,
            }),
        };
        ota.publish_all_desired().await;
        let task = tokio::spawn(ota.clone().run(inputs_rx, shutdown));
        Ok((ota, task))
    }

    /// A bench's `config/ack` payload (called by the broker dispatcher; never blocks).
    pub fn on_ack(&self, bench: &BenchId, payload: &[u8]) {
        match ConfigAck::decode(payload) {
            Ok(ack) => {
                let status = match ack.status {
                    AckStatus::Applied => "applied",
                    AckStatus::Rejected => "rejected",
                };
                self.shared
                    .metrics
                    .ota_acks_received
                    .get_or_create(&StatusLabel { status })
                    .inc();
                self.enqueue(Input::Ack {
                    bench: bench.clone(),
                    ack,
                });
            }
            Err(rejection) => {
                let reason = rejection.reason.label();
                self.shared
                    .metrics
                    .payload_dropped(bench.as_str(), "config ack", reason, &rejection.detail);
            }
        }
    }

    /// The configuration version a bench reports in its status (never blocks).
    pub fn on_status(&self, bench: &BenchId, config_version: u64) {
        self.enqueue(Input::Reported {
            bench: bench.clone(),
            version: config_version,
        });
    }

    /// Live changes of bench configuration states and rollouts.
    pub fn subscribe(&self) -> broadcast::Receiver<OtaEvent> {
        self.shared.events.subscribe()
    }

    /// Every layer, least specific first.
    pub async fn layers(&self) -> Vec<LayerRecord> {
        self.lock().await.engine.layer_records.values().cloned().collect()
    }

    /// One layer; `None` when it is empty.
    pub async fn layer(&self, scope: &Scope) -> Option<LayerRecord> {
        self.lock().await.engine.layer_records.get(scope).cloned()
    }

    /// What replacing the layer at `scope` with `content` would change, per bench, without
    /// changing anything. Only benches that would change are listed.
    pub async fn dry_run(&self, scope: &Scope, content: &Value) -> Result<Vec<BenchDiff>, OtaError> {
        let content = object(content)?;
        self.lock().await.engine.dry_run(scope, &content)
    }

    /// Replaces the layer at `scope` (an empty object removes it) and sends every bench whose
    /// effective configuration changes a new version at once. Returns what changed per bench.
    /// Refused while an active rollout controls an affected bench or the same layer.
    pub async fn set_layer(&self, actor: &str, scope: &Scope, content: &Value) -> Result<Vec<BenchDiff>, OtaError> {
        let content = object(content)?;
        let mut state = self.lock().await;
        let (plan, diffs) = state.engine.plan_set_layer(scope, &content, actor, Utc::now())?;
        self.commit(&mut state, plan).await?;
        info!(ota.layer = %scope, ota.actor = actor, ota.benches = diffs.len(), "configuration layer set");
        Ok(diffs)
    }

    /// A bench's effective configuration from the layers.
    pub async fn effective(&self, bench: &str) -> Result<EffectiveConfig, OtaError> {
        let state = self.lock().await;
        let engine = &state.engine;
        let info = engine
            .fleet
            .get(bench)
            .ok_or_else(|| OtaError::UnknownBench(bench.to_owned()))?;
        let config = engine.layers.effective(info).map_err(OtaError::Invalid)?;
        let desired = engine.benches.get(&info.id);
        Ok(EffectiveConfig {
            bench: info.id.clone(),
            layers: engine
                .layers
                .iter()
                .filter(|(s, _)| s.applies_to(info))
                .map(|(s, _)| s.clone())
                .collect(),
            desired_version: desired.map(|d| d.desired_version),
            matches_desired: desired.is_some_and(|d| d.desired == config),
            config,
        })
    }

    /// One bench's desired/reported configuration and delivery state.
    pub async fn status(&self, bench: &str) -> Result<BenchConfigStatus, OtaError> {
        let state = self.lock().await;
        let id = BenchId::parse(bench).map_err(|_| OtaError::UnknownBench(bench.to_owned()))?;
        let record = state
            .engine
            .benches
            .get(&id)
            .filter(|_| state.engine.fleet.contains(bench))
            .ok_or_else(|| OtaError::UnknownBench(bench.to_owned()))?;
        Ok(self.view(record, Utc::now()))
    }

    /// The configuration version each registry bench runs, as far as it told (an `applied`
    /// acknowledgement or its status, whichever came last), by bench id: the `reported_version`
    /// of [`Ota::statuses`], for views that show only the running version.
    pub async fn running_versions(&self) -> HashMap<String, u64> {
        let state = self.lock().await;
        state
            .engine
            .benches
            .values()
            .filter(|r| state.engine.fleet.contains(r.bench_id.as_str()))
            .filter_map(|r| Some((r.bench_id.to_string(), r.reported_version?)))
            .collect()
    }

    /// Every registry bench's configuration status, by bench id.
    pub async fn statuses(&self) -> Vec<BenchConfigStatus> {
        let state = self.lock().await;
        let now = Utc::now();
        state
            .engine
            .benches
            .values()
            .filter(|r| state.engine.fleet.contains(r.bench_id.as_str()))
            .map(|r| self.view(r, now))
            .collect()
    }

    /// The versions issued to a bench, newest first, at most `limit`.
    pub async fn versions(&self, bench: &str, limit: u32) -> Result<Vec<IssuedVersion>, OtaError> {
        if !self.lock().await.engine.fleet.contains(bench) {
            return Err(OtaError::UnknownBench(bench.to_owned()));
        }
        Ok(self.shared.store.ota_versions(bench, limit).await?)
    }

    /// What a rollout would change, per bench, and its steps; nothing is created.
    pub async fn preview_rollout(&self, request: &RolloutRequest) -> Result<RolloutPreview, OtaError> {
        self.lock().await.engine.preview_rollout(request)
    }

    /// Starts a rollout; its first step begins at once. One rollout is active at a time.
    pub async fn create_rollout(&self, actor: &str, request: RolloutRequest) -> Result<Rollout, OtaError> {
        let mut state = self.lock().await;
        let id = uuid::Uuid::new_v4().to_string();
        let observer = self.shared.observer.clone();
        let health = move |b: &BenchId| (observer.presence(b), observer.faults(b));
        let (plan, rollout) = state
            .engine
            .plan_create_rollout(id, request, actor, Utc::now(), &health)?;
        self.commit(&mut state, plan).await?;
        info!(rollout.id = %rollout.id, ota.actor = actor, rollout.benches = rollout.benches.len(), rollout.steps = rollout.steps, "rollout created");
        Ok(rollout)
    }

    /// One rollout with per-bench progress.
    pub async fn rollout(&self, id: &str) -> Result<Rollout, OtaError> {
        self.lock()
            .await
            .engine
            .rollouts
            .get(id)
            .cloned()
            .ok_or_else(|| OtaError::UnknownRollout(id.to_owned()))
    }

    /// Every rollout in brief, newest first.
    pub async fn rollouts(&self) -> Vec<RolloutSummary> {
        let state = self.lock().await;
        let mut all: Vec<RolloutSummary> = state.engine.rollouts.values().map(RolloutSummary::from).collect();
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
        all
    }

    /// Stops a running rollout from advancing.
    pub async fn pause_rollout(&self, actor: &str, id: &str, reason: Option<&str>) -> Result<Rollout, OtaError> {
        self.steer(|e, now| e.plan_pause(id, true, actor, reason, now)).await
    }

    /// Lets a paused rollout continue.
    pub async fn resume_rollout(&self, actor: &str, id: &str, reason: Option<&str>) -> Result<Rollout, OtaError> {
        self.steer(|e, now| e.plan_pause(id, false, actor, reason, now)).await
    }

    /// Aborts an active rollout; the benches it reached get their previous configuration back.
    pub async fn abort_rollout(&self, actor: &str, id: &str, reason: Option<&str>) -> Result<Rollout, OtaError> {
        self.steer(|e, now| e.plan_abort(id, actor, reason, now)).await
    }

    /// Undoes a completed rollout: its layers return to what they were before it.
    pub async fn rollback_rollout(&self, actor: &str, id: &str, reason: Option<&str>) -> Result<Rollout, OtaError> {
        self.steer(|e, now| e.plan_rollback(id, actor, reason, now)).await
    }

    /// Audit log entries, newest first: those with an id below `before` (all when `None`), at
    /// most `limit`.
    pub async fn audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>, OtaError> {
        Ok(self.shared.store.ota_audit(before, limit).await?)
    }

    async fn steer(
        &self,
        plan: impl FnOnce(&Engine, DateTime<Utc>) -> Result<(Plan, Rollout), OtaError>,
    ) -> Result<Rollout, OtaError> {
        let mut state = self.lock().await;
        let (plan, rollout) = plan(&state.engine, Utc::now())?;
        self.commit(&mut state, plan).await?;
        info!(rollout.id = %rollout.id, rollout.state = rollout.state.as_str(), "rollout steered");
        Ok(rollout)
    }

    async fn lock(&self) -> tokio::sync::MutexGuard<'_, State> {
        self.shared.state.lock().await
    }

    fn view(&self, record: &BenchConfigRecord, now: DateTime<Utc>) -> BenchConfigStatus {
        let drift = record.drift(now);
        BenchConfigStatus {
            record: record.clone(),
            drift_seconds: drift.as_secs(),
            drifting: drift > self.shared.settings.drift_threshold,
        }
    }

    fn enqueue(&self, input: Input) {
        if let Err(e) = self.shared.inputs.try_send(input) {
            let bench = match e.into_inner() {
                Input::Ack { bench, .. } | Input::Reported { bench, .. } => bench,
            };
            self.shared.metrics.payload_dropped(
                bench.as_str(),
                "config ack or reported version",
                crate::metrics::DROP_QUEUE_FULL,
                &"the OTA input queue is full",
            );
        }
    }

    /// Writes a plan, then applies and publishes it. On a store error nothing changes.
    async fn commit(&self, state: &mut State, plan: Plan) -> Result<(), OtaError> {
        if plan.is_empty() {
            return Ok(());
        }
        self.shared.store.ota_write(&plan.write).await?;
        state.engine.apply(&plan.write);
        // Under the lock, so two changes of one bench cannot be published out of order.
        for bench in &plan.publish {
            self.publish(state, bench);
        }
        let now = Utc::now();
        for record in &plan.write.benches {
            if record.state == DeliveryState::Applied {
                self.interval_applied(&state.engine, record);
            }
            self.set_drift(record, now);
            let _ = self.shared.events.send(OtaEvent::BenchConfig(self.view(record, now)));
        }
        for rollout in &plan.write.rollouts {
            let _ = self.shared.events.send(OtaEvent::Rollout(rollout.into()));
        }
        Ok(())
    }

    fn publish(&self, state: &mut State, bench: &BenchId) {
        let Some(record) = state.engine.benches.get(bench) else {
            return;
        };
        let payload = Bytes::from(record.document().to_json());
        match self.shared.publisher.publish_config(bench, payload) {
            Ok(()) => {
                state.unpublished.remove(bench);
                debug!(bench.id = %bench, config.version = record.desired_version, "configuration published");
            }
            Err(e) => {
                if state.unpublished.insert(bench.clone()) {
                    warn!(bench.id = %bench, config.version = record.desired_version, error = %e, "configuration not published; retrying");
                }
            }
        }
    }

    /// Every registry bench's desired document, retained: after a restart the broker has none.
    async fn publish_all_desired(&self) {
        let mut state = self.lock().await;
        let benches: Vec<BenchId> = state.engine.fleet.iter().map(|b| b.id.clone()).collect();
        let deadline = tokio::time::Instant::now() + STARTUP_PUBLISH_DEADLINE;
        let now = Utc::now();
        for bench in &benches {
            let Some(record) = state.engine.benches.get(bench).cloned() else {
                continue;
            };
            let payload = Bytes::from(record.document().to_json());
            loop {
                match self.shared.publisher.publish_config(bench, payload.clone()) {
                    Ok(()) => break,
                    // The outbound queue drains quickly; wait for room instead of failing.
                    Err(BrokerError::Busy) if tokio::time::Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err(e) => {
                        warn!(bench.id = %bench, error = %e, "configuration not published at startup; retrying");
                        state.unpublished.insert(bench.clone());
                        break;
                    }
                }
            }
            if record.state == DeliveryState::Applied {
                self.interval_applied(&state.engine, &record);
            }
            self.set_drift(&record, now);
        }
        info!(
            ota.published = benches.len() - state.unpublished.len(),
            "desired configurations published (retained)"
        );
    }

    fn interval_applied(&self, engine: &Engine, record: &BenchConfigRecord) {
        let interval = record
            .desired
            .telemetry_interval_s
            .or_else(|| {
                engine
                    .fleet
                    .get(record.bench_id.as_str())
                    .map(|b| b.telemetry_interval_s)
            })
            .map(|s| Duration::from_secs(u64::from(s)));
        if let Some(interval) = interval {
            self.shared.observer.interval_applied(&record.bench_id, interval);
        }
    }

    fn set_drift(&self, record: &BenchConfigRecord, now: DateTime<Utc>) {
        let label = BenchLabel {
            bench: record.bench_id.to_string(),
        };
        self.shared
            .metrics
            .bench_config_drift_seconds
            .get_or_create(&label)
            .set(record.drift(now).as_secs_f64());
    }

    async fn handle(&self, input: &Input) -> Result<(), OtaError> {
        let mut state = self.lock().await;
        let now = Utc::now();
        let plan = match input {
            Input::Ack { bench, ack } => {
                debug!(bench.id = %bench, config.version = ack.version, config.status = ?ack.status, "config ack");
                state.engine.plan_ack(bench, ack, now)
            }
            Input::Reported { bench, version } => state.engine.plan_reported(bench, *version, now),
        };
        self.commit(&mut state, plan).await
    }

    async fn tick(&self) {
        let mut state = self.lock().await;
        let now = Utc::now();
        let observer = self.shared.observer.clone();
        let health = move |b: &BenchId| (observer.presence(b), observer.faults(b));
        let plan = state.engine.plan_tick(now, self.shared.settings.ack_timeout, &health);
        if let Err(e) = self.commit(&mut state, plan).await {
            self.shared.metrics.store_write_errors.inc();
            warn!(error = %e, "OTA state write failed; will retry");
        }
        let retry: Vec<BenchId> = state.unpublished.iter().cloned().collect();
        for bench in &retry {
            self.publish(&mut state, bench);
        }
        for record in state.engine.benches.values() {
            if state.engine.fleet.contains(record.bench_id.as_str()) {
                self.set_drift(record, now);
            }
        }
    }

    async fn run(self, mut inputs: mpsc::Receiver<Input>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.shared.settings.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retry: VecDeque<Input> = VecDeque::new();
        loop {
            tokio::select! {
                input = inputs.recv() => {
                    let Some(input) = input else { break };
                    if let Err(e) = self.handle(&input).await {
                        self.shared.metrics.store_write_errors.inc();
                        warn!(error = %e, ota.retry = retry.len(), "OTA state write failed; will retry");
                        if retry.len() < MAX_RETRY {
                            retry.push_back(input);
                        }
                    }
                }
                _ = tick.tick() => {
                    while let Some(input) = retry.pop_front() {
                        if self.handle(&input).await.is_err() {
                            retry.push_front(input);
                            break;
                        }
                    }
                    self.tick().await;
                }
                () = shutdown.cancelled() => break,
            }
        }
        if !retry.is_empty() {
            warn!(
                ota.unwritten = retry.len(),
                "stopping with acknowledgements the store did not take"
            );
        }
    }
}

/// A layer's content must be a JSON object.
fn object(content: &Value) -> Result<serde_json::Map<String, Value>, OtaError> {
    match content {
        Value::Object(m) => Ok(m.clone()),
        _ => Err(OtaError::Invalid(vec![FieldError::new(
            "",
            "a configuration layer must be a JSON object",
        )])),
    }
}

#[cfg(test)]
mod tests;
