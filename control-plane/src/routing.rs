//! Idea routing: the network's organisations, the routing rules, and every idea's lifecycle from
//! a bench's kiosk to a completed action.
//!
//! - [`rules`]: the rule set, how an idea is matched against it, and validation.
//! - [`lifecycle`]: what organisations and moderators may do in which state; deadlines.
//! - [`text`]: folding (case, spacing, Cyrillic → Latin), fingerprints, redaction.
//! - [`limit`]: token buckets (ideas per bench, public requests per address).
//! - [`records`]: what is stored, and the one atomic write every change goes through.
//!
//! [`Routing`] is the handle the rest of the control plane uses. Changes are serialised by one
//! lock and written to the store (one transaction) before they take effect in memory, are
//! acknowledged to a kiosk or are announced; deadlines live on the stored idea and are cleared
//! in the same write that acts on them, so they fire once and survive restarts.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Datelike, Utc};
use protocol::config::FieldError;
use protocol::idea::{AckStatus, IdeaAck, IdeaSubmission};
use protocol::{BenchId, Fleet, IdeaState, Topic, TopicKind};
use tokio::sync::{Mutex, broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::broker::{BrokerError, BrokerHandle};
use crate::metrics::{Metrics, StatusLabel};
use crate::store::{Store, StoreError};

pub mod demo;
pub mod lifecycle;
pub mod limit;
pub mod records;
pub mod rules;
#[cfg(test)]
mod tests;
pub mod text;
mod view;

pub use lifecycle::{Actor, IdeaAction, LifecycleError, Notes};
pub use records::{
    IdeaCount, IdeaEvent, IdeaFilter, IdeaRecord, OrgState, Organisation, RoutingAudit, RoutingWrite, RuleSetRecord,
};
pub use rules::{Decision, IdeaFacts, Match, Route, Rule, RuleCheck, RuleSet, Sla, Strategy};
pub use view::{Application, IdeaChange, IdeaReport, Reader};

use limit::TokenBuckets;

/// Why a routing operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    /// One entry per bad field.
    #[error("invalid: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    #[error("no idea {0:?}")]
    UnknownIdea(String),
    #[error("no organisation {0:?}")]
    UnknownOrganisation(String),
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    #[error("{0}")]
    Conflict(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

/// Intake limits and timing.
#[derive(Debug, Clone, PartialEq)]
pub struct RoutingSettings {
    /// Fewest characters an idea's text may have.
    pub text_min_chars: usize,
    /// Most characters an idea's text may have (at most the wire limit, 4000).
    pub text_max_chars: usize,
    /// Ideas one bench may send in a burst...
    pub bench_burst: u32,
    /// ...and per hour after it.
    pub bench_per_hour: u32,
    /// Words or phrases that hold an idea for moderation (matched like rule keywords).
    pub blocklist: Vec<String>,
    /// Public requests (applications, status lookups) per client address: burst and per hour.
    pub public_burst: u32,
    pub public_per_hour: u32,
    /// How often deadlines are checked.
    pub tick: Duration,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        Self {
            text_min_chars: 10,
            text_max_chars: 2000,
            bench_burst: 10,
            bench_per_hour: 30,
            blocklist: Vec::new(),
            public_burst: 20,
            public_per_hour: 600,
            tick: Duration::from_secs(1),
        }
    }
}

/// What time it is; tests move it by hand.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock(std::sync::Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self(std::sync::Mutex::new(now))
    }

    pub fn advance(&self, by: chrono::TimeDelta) {
        let mut now = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Sends a kiosk the answer to an idea.
pub trait AckSender: Send + Sync + 'static {
    fn send_ack(&self, bench: &BenchId, ack: &IdeaAck) -> Result<(), BrokerError>;
}

impl AckSender for BrokerHandle {
    fn send_ack(&self, bench: &BenchId, ack: &IdeaAck) -> Result<(), BrokerError> {
        let topic = Topic::new(bench.clone(), TopicKind::IdeasAck).to_string();
        self.publish(&topic, Bytes::from(ack.to_json()), false)
    }
}

/// An idea as it arrived over MQTT.
#[derive(Debug, Clone)]
struct Submission {
    bench: BenchId,
    payload: Bytes,
    received_at: DateTime<Utc>,
}

/// Submissions queued for the routing task; beyond it they are dropped (counted as
/// `queue_full`) and the kiosk, without an ack, sends them again.
const INPUT_CAPACITY: usize = 10_000;
/// Submissions kept for retry while the store refuses writes.
const MAX_RETRY: usize = 10_000;
/// Ideas acted on per deadline check.
const DUE_BATCH: u32 = 200;

struct State {
    rules: RuleSetRecord,
    organisations: BTreeMap<String, Organisation>,
    cursors: BTreeMap<String, i64>,
    bench_limits: TokenBuckets,
}

struct Shared {
    state: Mutex<State>,
    public_limits: std::sync::Mutex<TokenBuckets>,
    store: Arc<dyn Store>,
    acks: Arc<dyn AckSender>,
    fleet: Arc<Fleet>,
    metrics: Arc<Metrics>,
    settings: RoutingSettings,
    clock: Arc<dyn Clock>,
    inputs: mpsc::Sender<Submission>,
    events: broadcast::Sender<IdeaChange>,
    /// Ideas held for retry while the store refuses writes.
    retrying: std::sync::atomic::AtomicUsize,
}

/// The idea-routing service. Cheap to clone.
#[derive(Clone)]
pub struct Routing {
    shared: Arc<Shared>,
}

impl Routing {
    /// Loads organisations, the rule set in force and round-robin positions, and starts the
    /// task that takes ideas from benches and fires deadlines.
    pub async fn start(
        fleet: Arc<Fleet>,
        settings: RoutingSettings,
        store: Arc<dyn Store>,
        acks: Arc<dyn AckSender>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Result<(Self, JoinHandle<()>), RoutingError> {
        let (routing, inputs) = Self::load(fleet, settings, store, acks, clock, metrics).await?;
        let task = tokio::spawn(routing.clone().run(inputs, shutdown));
        Ok((routing, task))
    }

    /// [`Routing::start`] without the task: the caller takes ideas with [`Routing::submit`]
    /// and fires deadlines with [`Routing::tick`] (tests drive time this way).
    pub async fn load(
        fleet: Arc<Fleet>,
        settings: RoutingSettings,
        store: Arc<dyn Store>,
        acks: Arc<dyn AckSender>,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
    ) -> Result<(Self, Inputs), RoutingError> {
        let organisations = store
            .organisations()
            .await?
            .into_iter()
            .map(|o| (o.id.clone(), o))
            .collect();
        let rules = store
            .rule_sets(1)
            .await?
            .into_iter()
            .next()
            .unwrap_or_else(|| RuleSetRecord {
                version: 0,
                rules: RuleSet::default(),
                created_by: "system".into(),
                created_at: clock.now(),
            });
        let cursors = store.routing_cursors().await?.into_iter().collect();
        let (inputs, inputs_rx) = mpsc::channel(INPUT_CAPACITY);
        let (events, _) = broadcast::channel(256);
        let routing = Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    rules,
                    organisations,
                    cursors,
                    bench_limits: TokenBuckets::new(settings.bench_burst, settings.bench_per_hour),
                }),
                public_limits: std::sync::Mutex::new(TokenBuckets::new(
                    settings.public_burst,
                    settings.public_per_hour,
                )),
                store,
                acks,
                fleet,
                metrics,
                settings,
                clock,
                inputs,
                events,
                retrying: std::sync::atomic::AtomicUsize::new(0),
            }),
        };
        routing.refresh_awaiting().await;
        Ok((routing, Inputs(inputs_rx)))
    }

    /// A kiosk's idea (called by the broker dispatcher; never blocks).
    pub fn on_idea(&self, bench: &BenchId, payload: Bytes, received_at: DateTime<Utc>) {
        let submission = Submission {
            bench: bench.clone(),
            payload,
            received_at,
        };
        if self.shared.inputs.try_send(submission).is_err() {
            self.shared.metrics.dropped(crate::metrics::DROP_QUEUE_FULL);
            warn!(bench.id = %bench, "idea queue full; dropped (the kiosk sends it again without an ack)");
        }
    }

    /// Live idea changes.
    pub fn subscribe(&self) -> broadcast::Receiver<IdeaChange> {
        self.shared.events.subscribe()
    }

    /// The time by the routing clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// Ideas from kiosks held for retry because the store refused them (not yet acknowledged).
    pub fn retrying(&self) -> usize {
        self.shared.retrying.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether a public request from `client` may go ahead now, or how long it must wait.
    pub fn admit_public(&self, client: &str) -> Result<(), Duration> {
        let now = self.now();
        self.shared
            .public_limits
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take(client, now)
    }

    async fn run(self, mut inputs: Inputs, shutdown: CancellationToken) {
        let mut retry: VecDeque<Submission> = VecDeque::new();
        let mut tick = tokio::time::interval(self.shared.settings.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut open = true;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                s = inputs.0.recv(), if open => match s {
                    Some(s) => {
                        if retry.is_empty() {
                            if let Err(e) = self.take(&s).await {
                                warn!(bench.id = %s.bench, error = %e, "idea not stored; retrying");
                                retry.push_back(s);
                            }
                        } else {
                            self.keep_for_retry(&mut retry, s);
                        }
                    }
                    None => open = false,
                },
                _ = tick.tick() => {
                    self.shared.retrying.store(retry.len(), std::sync::atomic::Ordering::Relaxed);
                    while let Some(s) = retry.front() {
                        if let Err(e) = self.take(s).await {
                            debug!(error = %e, waiting = retry.len(), "store still refusing ideas");
                            break;
                        }
                        retry.pop_front();
                    }
                    self.shared.retrying.store(retry.len(), std::sync::atomic::Ordering::Relaxed);
                    match self.tick().await {
                        Ok(0) => {}
                        Ok(n) => debug!(ideas = n, "idea deadlines fired"),
                        Err(e) => warn!(error = %e, "idea deadlines not checked; retrying"),
                    }
                }
            }
        }
        // What arrived before shutdown is stored if the store lets us.
        while let Ok(s) = inputs.0.try_recv() {
            retry.push_back(s);
        }
        for s in retry {
            if let Err(e) = self.take(&s).await {
                warn!(bench.id = %s.bench, error = %e, "idea not stored at shutdown; the kiosk sends it again");
            }
        }
    }

    fn keep_for_retry(&self, retry: &mut VecDeque<Submission>, s: Submission) {
        if retry.len() >= MAX_RETRY {
            self.shared.metrics.dropped(crate::metrics::DROP_QUEUE_FULL);
            warn!(bench.id = %s.bench, "idea retry queue full; dropped (the kiosk sends it again without an ack)");
        } else {
            retry.push_back(s);
        }
    }

    async fn take(&self, s: &Submission) -> Result<(), StoreError> {
        if let Some(ack) = self.submit(&s.bench, &s.payload, s.received_at).await?
            && let Err(e) = self.shared.acks.send_ack(&s.bench, &ack)
        {
            warn!(bench.id = %s.bench, error = %e, "idea ack not sent; the kiosk will send the idea again");
        }
        Ok(())
    }

    /// Takes one idea from a kiosk: validates it, answers a repeated `idea_id` with its code,
    /// applies the rate limit, then stores it held (blocklist), as a duplicate, or routed. Returns
    /// the ack to send, `None` when the payload is unusable even for an ack. A store error
    /// means nothing was stored: try again.
    pub async fn submit(
        &self,
        bench: &BenchId,
        payload: &[u8],
        received_at: DateTime<Utc>,
    ) -> Result<Option<IdeaAck>, StoreError> {
        let idea = match IdeaSubmission::decode(payload) {
            Ok(idea) => idea,
            Err(rejection) => {
                self.shared.metrics.dropped(rejection.reason.label());
                warn!(bench.id = %bench, reason = rejection.reason.label(), detail = %rejection.detail, "idea dropped");
                return Ok(view::idea_id_of(payload).map(|id| self.refused(id, AckStatus::Invalid, rejection.detail)));
            }
        };
        let id = idea.idea_id.to_ascii_lowercase();
        let settings = &self.shared.settings;
        let mut state = self.shared.state.lock().await;
        if let Some(existing) = self.shared.store.idea(&id).await? {
            if existing.bench_id != bench.as_str() {
                return Ok(Some(self.refused(
                    id,
                    AckStatus::Invalid,
                    "idea_id already used by another bench".into(),
                )));
            }
            debug!(bench.id = %bench, idea.id = %id, "idea sent again; same answer");
            return Ok(Some(accepted(&existing)));
        }
        let chars = idea.text.trim().chars().count();
        if chars < settings.text_min_chars || chars > settings.text_max_chars {
            let detail = format!(
                "text must have {}-{} characters, not {chars}",
                settings.text_min_chars, settings.text_max_chars
            );
            return Ok(Some(self.refused(id, AckStatus::Invalid, detail)));
        }
        let now = self.now();
        if let Err(wait) = state.bench_limits.take(bench.as_str(), now) {
            info!(bench.id = %bench, retry_after.seconds = wait.as_secs(), "idea refused: bench over its rate limit");
            let detail = format!("too many ideas from this bench; send again in {} s", wait.as_secs());
            let mut ack = self.refused(id, AckStatus::RateLimited, detail);
            ack.retry_after_s = Some(wait.as_secs());
            return Ok(Some(ack));
        }
        let stored = self.store_new(&mut state, bench, id, idea, received_at, now).await;
        if stored.is_err() {
            state.bench_limits.refund(bench.as_str());
        }
        let (record, changes) = stored?;
        drop(state);
        self.announce(&changes).await;
        let ack = accepted(&record);
        self.count_ack(ack.status);
        info!(bench.id = %bench, idea.code = %record.tracking_code, idea.state = %record.state, "idea received");
        Ok(Some(ack))
    }

    async fn store_new(
        &self,
        state: &mut State,
        bench: &BenchId,
        id: String,
        idea: IdeaSubmission,
        received_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(IdeaRecord, Vec<IdeaEvent>), StoreError> {
        let store = &self.shared.store;
        let municipality = self
            .shared
            .fleet
            .get(bench.as_str())
            .map_or_else(String::new, |b| b.municipality.clone());
        let prefix = format!("{}-{}", text::code_prefix(&municipality), received_at.year());
        let number = store.next_tracking_number(&prefix).await?;
        let consent = idea.contact.as_ref().is_some_and(|c| c.consent);
        let mut record = IdeaRecord {
            tracking_code: format!("{prefix}-{number:04}"),
            bench_id: bench.to_string(),
            municipality,
            submitted_at: idea.ts,
            received_at,
            fingerprint: text::fingerprint(&idea.text),
            text: idea.text,
            category: idea.category,
            lang: idea.lang,
            contact: idea.contact.filter(|c| c.consent),
            consent,
            duplicate_of: None,
            state: IdeaState::Received,
            org_id: None,
            offered_to: Vec::new(),
            excluded: Vec::new(),
            attempts: 0,
            rule: None,
            rule_version: None,
            confirm_within_s: None,
            act_within_s: None,
            deadline: None,
            flag: None,
            updated_at: now,
            confirmed_at: None,
            completed_at: None,
            id,
        };
        let actor = format!("bench:{bench}");
        let mut events = vec![lifecycle::event(
            &record,
            now,
            &actor,
            "received",
            None,
            None,
            &Notes::default(),
        )];
        let folded = text::fold(&record.text);
        let blocked = self
            .shared
            .settings
            .blocklist
            .iter()
            .find(|w| text::has_keyword(&folded, w));
        let mut cursor = None;
        if let Some(word) = blocked {
            record.state = IdeaState::Held;
            record.flag = Some(format!("blocklisted: {word}"));
            events.push(lifecycle::event(
                &record,
                now,
                "system",
                "held",
                Some(IdeaState::Received),
                None,
                &Notes::default(),
            ));
        } else if let Some(original) = store.idea_by_fingerprint(&record.fingerprint).await? {
            record.state = IdeaState::Duplicate;
            record.duplicate_of = Some(original.id.clone());
            let notes = Notes {
                public: Some(format!(
                    "The same idea was already submitted as {}.",
                    original.tracking_code
                )),
                ..Notes::default()
            };
            events.push(lifecycle::event(
                &record,
                now,
                "system",
                "duplicate",
                Some(IdeaState::Received),
                None,
                &notes,
            ));
        } else {
            let (routed, c) = self.route(state, &mut record, now, "system").await?;
            events.extend(routed);
            cursor = c;
        }
        let write = RoutingWrite {
            ideas: vec![record.clone()],
            events: events.clone(),
            cursors: cursor.clone().into_iter().collect(),
            ..RoutingWrite::default()
        };
        store.routing_write(&write).await?;
        if let Some((key, position)) = cursor {
            state.cursors.insert(key, position);
        }
        Ok((record, events))
    }

    /// Chooses organisations for an idea that needs routing and applies the decision. Returns
    /// the events and the round-robin position to keep (once written).
    async fn route(
        &self,
        state: &State,
        idea: &mut IdeaRecord,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<(Vec<IdeaEvent>, Option<(String, i64)>), StoreError> {
        let decision = self.decide(state, &view::facts(idea), &idea.excluded, None).await?;
        let events = lifecycle::apply_route(
            idea,
            &decision,
            state.rules.version,
            state.rules.rules.max_attempts,
            actor,
            now,
        );
        let cursor = decision.cursor.filter(|_| idea.state == IdeaState::Offered);
        Ok((events, cursor))
    }

    async fn decide(
        &self,
        state: &State,
        facts: &IdeaFacts,
        excluded: &[String],
        rules: Option<&RuleSet>,
    ) -> Result<Decision, StoreError> {
        let rules = rules.unwrap_or(&state.rules.rules);
        let loads: BTreeMap<String, i64> = if rules.rules.iter().any(|r| r.strategy == Strategy::LeastLoaded) {
            self.shared.store.open_idea_counts().await?.into_iter().collect()
        } else {
            BTreeMap::new()
        };
        Ok(rules.route(
            facts,
            &rules::Situation {
                organisations: &state.organisations,
                excluded,
                cursors: &state.cursors,
                loads: &loads,
            },
        ))
    }

    fn refused(&self, idea_id: String, status: AckStatus, reason: String) -> IdeaAck {
        self.count_ack(status);
        IdeaAck {
            v: protocol::PAYLOAD_VERSION,
            idea_id,
            tracking_code: None,
            status,
            reason: Some(reason),
            retry_after_s: None,
        }
    }

    fn count_ack(&self, status: AckStatus) {
        let status = match status {
            AckStatus::Received => "received",
            AckStatus::Duplicate => "duplicate",
            AckStatus::RateLimited => "rate_limited",
            AckStatus::Invalid => "invalid",
        };
        self.shared
            .metrics
            .ideas_submitted
            .get_or_create(&StatusLabel { status })
            .inc();
    }

    /// Counts transitions and tells live clients, after a write.
    async fn announce(&self, events: &[IdeaEvent]) {
        for e in events {
            if e.from_state != Some(e.to_state) {
                self.shared
                    .metrics
                    .idea_transitions
                    .get_or_create(&StatusLabel {
                        status: e.to_state.as_str(),
                    })
                    .inc();
            }
        }
        let changes = view::changes(events, &self.shared.store).await;
        for change in changes {
            let _ = self.shared.events.send(change);
        }
        self.refresh_awaiting().await;
    }

    /// Recounts the ideas waiting for operators (a grouped count, no idea bodies).
    async fn refresh_awaiting(&self) {
        let (from, to) = (
            DateTime::<Utc>::UNIX_EPOCH,
            DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::days(365 * 8000),
        );
        if let Ok(counts) = self.shared.store.idea_counts(from, to).await {
            let waiting: i64 = counts
                .iter()
                .filter(|c| c.state.needs_operator())
                .map(|c| c.count)
                .sum();
            self.shared.metrics.ideas_awaiting_operator.set(waiting);
        }
    }

    /// Fires every passed deadline (by the routing clock): unconfirmed offers go to the next
    /// organisation or escalate; late actions are marked overdue. Returns how many fired.
    pub async fn tick(&self) -> Result<usize, RoutingError> {
        let now = self.now();
        let mut state = self.shared.state.lock().await;
        let due = self.shared.store.ideas_due(now, DUE_BATCH).await?;
        let mut fired = 0;
        for mut idea in due {
            let Some((kind, step)) = lifecycle::expire(&mut idea, now) else {
                continue;
            };
            let mut events = step.events;
            let mut cursor = None;
            if step.needs_routing {
                let (routed, c) = self.route(&state, &mut idea, now, "system").await?;
                events.extend(routed);
                cursor = c;
            }
            let write = RoutingWrite {
                ideas: vec![idea.clone()],
                events: events.clone(),
                cursors: cursor.clone().into_iter().collect(),
                ..RoutingWrite::default()
            };
            self.shared.store.routing_write(&write).await?;
            if let Some((key, position)) = cursor {
                state.cursors.insert(key, position);
            }
            if kind != "none" {
                self.shared
                    .metrics
                    .idea_deadlines_expired
                    .get_or_create(&StatusLabel { status: kind })
                    .inc();
                info!(idea.code = %idea.tracking_code, deadline = kind, idea.state = %idea.state, "idea deadline passed");
            }
            self.announce(&events).await;
            fired += 1;
        }
        Ok(fired)
    }

    /// An organisation's or a moderator's action on an idea. A `cso` actor acts for its own
    /// organisation only: other organisations' ideas are [`LifecycleError::NotYours`].
    pub async fn act(
        &self,
        idea_id: &str,
        action: IdeaAction,
        actor: &Actor,
        notes: &Notes,
    ) -> Result<IdeaRecord, RoutingError> {
        let now = self.now();
        let mut state = self.shared.state.lock().await;
        let mut idea = self
            .shared
            .store
            .idea(idea_id)
            .await?
            .ok_or_else(|| RoutingError::UnknownIdea(idea_id.to_owned()))?;
        if let IdeaAction::Assign(org) = &action {
            match state.organisations.get(org) {
                Some(o) if o.state == OrgState::Active => {}
                Some(o) => {
                    return Err(RoutingError::Conflict(format!(
                        "organisation {org} is {}, not active",
                        o.state.as_str()
                    )));
                }
                None => return Err(RoutingError::UnknownOrganisation(org.clone())),
            }
            if idea.confirm_within_s.is_none() {
                idea.confirm_within_s =
                    Some(i64::try_from(state.rules.rules.default_sla.confirm_within.as_secs()).unwrap_or(i64::MAX / 4));
                idea.act_within_s =
                    Some(i64::try_from(state.rules.rules.default_sla.act_within.as_secs()).unwrap_or(i64::MAX / 4));
            }
        }
        let step = lifecycle::act(&mut idea, &action, actor, notes, now)?;
        let mut events = step.events;
        let mut cursor = None;
        if step.needs_routing {
            let (routed, c) = self.route(&state, &mut idea, now, &actor.subject).await?;
            events.extend(routed);
            cursor = c;
        }
        let write = RoutingWrite {
            ideas: vec![idea.clone()],
            events: events.clone(),
            cursors: cursor.clone().into_iter().collect(),
            ..RoutingWrite::default()
        };
        self.shared.store.routing_write(&write).await?;
        if let Some((key, position)) = cursor {
            state.cursors.insert(key, position);
        }
        drop(state);
        info!(idea.code = %idea.tracking_code, idea.action = action.as_str(), idea.state = %idea.state, user.sub = %actor.subject, "idea action");
        self.announce(&events).await;
        Ok(idea)
    }

    /// One idea as stored.
    pub async fn idea(&self, id: &str) -> Result<IdeaRecord, RoutingError> {
        self.shared
            .store
            .idea(id)
            .await?
            .ok_or_else(|| RoutingError::UnknownIdea(id.to_owned()))
    }

    /// An idea's events, oldest first.
    pub async fn history(&self, id: &str) -> Result<Vec<IdeaEvent>, RoutingError> {
        Ok(self.shared.store.idea_events(id).await?)
    }

    /// Ideas matching `filter`, newest first.
    pub async fn ideas(&self, filter: &IdeaFilter) -> Result<Vec<IdeaRecord>, RoutingError> {
        Ok(self.shared.store.ideas(filter).await?)
    }

    /// What a citizen with the tracking code may see.
    pub async fn public(&self, tracking_code: &str) -> Result<protocol::idea::PublicIdea, RoutingError> {
        let store = &self.shared.store;
        let idea = store
            .idea_by_code(tracking_code)
            .await?
            .ok_or_else(|| RoutingError::UnknownIdea(tracking_code.to_owned()))?;
        let original = match &idea.duplicate_of {
            Some(id) => store.idea(id).await?.map(|o| o.tracking_code),
            None => None,
        };
        let events = store.idea_events(&idea.id).await?;
        let organisations = self.organisations().await;
        Ok(view::public(&idea, original, &events, &organisations))
    }

    // --- Organisations ---

    /// Every organisation, by id.
    pub async fn organisations(&self) -> BTreeMap<String, Organisation> {
        self.shared.state.lock().await.organisations.clone()
    }

    /// Records an application to join the network (state `applied`).
    pub async fn apply(&self, application: Application) -> Result<Organisation, RoutingError> {
        let errors = application.validate(&self.shared.fleet);
        if !errors.is_empty() {
            return Err(RoutingError::Invalid(errors));
        }
        let now = self.now();
        let mut state = self.shared.state.lock().await;
        let base = view::slug(&application.name);
        let id = (1..)
            .map(|n| if n == 1 { base.clone() } else { format!("{base}-{n}") })
            .find(|id| !state.organisations.contains_key(id))
            .unwrap_or(base);
        let org = application.into_organisation(id, now);
        let write = RoutingWrite {
            organisations: vec![org.clone()],
            audit: vec![RoutingAudit {
                id: 0,
                at: now,
                actor: "public".into(),
                action: "organisation.apply".into(),
                subject: org.id.clone(),
                detail: serde_json::json!({ "name": org.name, "municipalities": org.municipalities }),
            }],
            ..RoutingWrite::default()
        };
        self.shared.store.routing_write(&write).await?;
        state.organisations.insert(org.id.clone(), org.clone());
        info!(org.id = %org.id, "organisation applied to join");
        Ok(org)
    }

    /// An operator's decision on an organisation: `approve` (applied → active), `reject`
    /// (applied → rejected), `suspend` (active → suspended), `reactivate` (suspended → active).
    pub async fn decide_organisation(
        &self,
        actor: &str,
        id: &str,
        decision: &str,
        note: Option<String>,
    ) -> Result<Organisation, RoutingError> {
        let now = self.now();
        let mut state = self.shared.state.lock().await;
        let org = state
            .organisations
            .get(id)
            .ok_or_else(|| RoutingError::UnknownOrganisation(id.to_owned()))?;
        let to = match (decision, org.state) {
            ("approve", OrgState::Applied) | ("reactivate", OrgState::Suspended) => OrgState::Active,
            ("reject", OrgState::Applied) => OrgState::Rejected,
            ("suspend", OrgState::Active) => OrgState::Suspended,
            (_, from) => {
                return Err(RoutingError::Conflict(format!(
                    "cannot {decision} an organisation that is {}",
                    from.as_str()
                )));
            }
        };
        let mut next = org.clone();
        let from = next.state;
        next.state = to;
        next.updated_at = now;
        next.decided_by = Some(actor.to_owned());
        next.note = note.clone();
        let write = RoutingWrite {
            organisations: vec![next.clone()],
            audit: vec![RoutingAudit {
                id: 0,
                at: now,
                actor: actor.to_owned(),
                action: format!("organisation.{decision}"),
                subject: id.to_owned(),
                detail: serde_json::json!({ "from": from.as_str(), "to": to.as_str(), "note": note }),
            }],
            ..RoutingWrite::default()
        };
        self.shared.store.routing_write(&write).await?;
        state.organisations.insert(id.to_owned(), next.clone());
        info!(org.id = %id, org.state = to.as_str(), user.sub = %actor, "organisation {decision}d");
        if to == OrgState::Suspended {
            self.withdraw_offers(&mut state, id, actor, now).await?;
        }
        Ok(next)
    }

    /// Takes back what a suspended organisation is offered: each idea goes to its other offers,
    /// or is routed again without it. One write per idea; an idea left behind by a failed write
    /// is re-offered when its deadline passes.
    async fn withdraw_offers(
        &self,
        state: &mut State,
        org: &str,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<(), RoutingError> {
        let filter = IdeaFilter {
            states: vec![IdeaState::Offered],
            org: Some(org.to_owned()),
            limit: 10_000,
            ..IdeaFilter::default()
        };
        for mut idea in self.shared.store.ideas(&filter).await? {
            if !idea.offered_to.iter().any(|o| o == org) {
                continue;
            }
            idea.offered_to.retain(|o| o != org);
            idea.excluded.push(org.to_owned());
            idea.updated_at = now;
            let notes = Notes {
                internal: Some("organisation suspended".into()),
                ..Notes::default()
            };
            let mut events = vec![lifecycle::event(
                &idea,
                now,
                actor,
                "withdrawn",
                Some(IdeaState::Offered),
                Some(org),
                &notes,
            )];
            let mut cursor = None;
            if idea.offered_to.is_empty() {
                let (routed, c) = self.route(state, &mut idea, now, actor).await?;
                events.extend(routed);
                cursor = c;
            }
            let write = RoutingWrite {
                ideas: vec![idea.clone()],
                events: events.clone(),
                cursors: cursor.clone().into_iter().collect(),
                ..RoutingWrite::default()
            };
            self.shared.store.routing_write(&write).await?;
            if let Some((key, position)) = cursor {
                state.cursors.insert(key, position);
            }
            info!(idea.code = %idea.tracking_code, org.id = %org, idea.state = %idea.state, "offer withdrawn from a suspended organisation");
            self.announce(&events).await;
        }
        Ok(())
    }

    /// Routing audit entries, newest first.
    pub async fn audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<RoutingAudit>, RoutingError> {
        Ok(self.shared.store.routing_audit(before, limit).await?)
    }

    // --- Rules ---

    /// The rule set in force (version 0, empty, before anyone set one).
    pub async fn rules(&self) -> RuleSetRecord {
        self.shared.state.lock().await.rules.clone()
    }

    /// Earlier versions, newest first.
    pub async fn rule_versions(&self, limit: u32) -> Result<Vec<RuleSetRecord>, RoutingError> {
        Ok(self.shared.store.rule_sets(limit).await?)
    }

    /// Replaces the whole rule set, as a new version.
    pub async fn set_rules(&self, actor: &str, rules: RuleSet) -> Result<RuleSetRecord, RoutingError> {
        let mut state = self.shared.state.lock().await;
        let errors = rules.validate(&state.organisations, &self.shared.fleet);
        if !errors.is_empty() {
            return Err(RoutingError::Invalid(errors));
        }
        let record = RuleSetRecord {
            version: state.rules.version + 1,
            rules,
            created_by: actor.to_owned(),
            created_at: self.now(),
        };
        let write = RoutingWrite {
            rule_set: Some(record.clone()),
            ..RoutingWrite::default()
        };
        self.shared.store.routing_write(&write).await?;
        state.rules = record.clone();
        info!(routing.version = record.version, routing.rules = record.rules.rules.len(), user.sub = %actor, "routing rules replaced");
        Ok(record)
    }

    /// Runs an idea through `rules` (the set in force when `None`) without changing anything,
    /// and explains the outcome. A past idea is routed as it would be now, without the
    /// organisations that already declined it.
    pub async fn test_rules(
        &self,
        facts: &IdeaFacts,
        excluded: &[String],
        rules: Option<&RuleSet>,
    ) -> Result<Decision, RoutingError> {
        let state = self.shared.state.lock().await;
        if let Some(rules) = rules {
            let errors = rules.validate(&state.organisations, &self.shared.fleet);
            if !errors.is_empty() {
                return Err(RoutingError::Invalid(errors));
            }
        }
        Ok(self.decide(&state, facts, excluded, rules).await?)
    }

    /// Ideas per municipality, category and state, and the median time to confirm per
    /// organisation, for ideas received in `from <= received_at < to`.
    pub async fn report(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<IdeaReport, RoutingError> {
        let counts = self.shared.store.idea_counts(from, to).await?;
        let times = self.shared.store.confirm_times(from, to).await?;
        let organisations = self.organisations().await;
        Ok(view::report(from, to, &counts, &times, &organisations))
    }
}

/// The receiving end of the kiosk queue, for [`Routing::load`] callers.
pub struct Inputs(mpsc::Receiver<Submission>);

/// The ack for an accepted (stored) idea.
fn accepted(idea: &IdeaRecord) -> IdeaAck {
    IdeaAck {
        v: protocol::PAYLOAD_VERSION,
        idea_id: idea.id.clone(),
        tracking_code: Some(idea.tracking_code.clone()),
        status: if idea.state == IdeaState::Duplicate {
            AckStatus::Duplicate
        } else {
            AckStatus::Received
        },
        reason: None,
        retry_after_s: None,
    }
}
