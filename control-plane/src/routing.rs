//! Idea routing: the network's organisations, the routing rules, and every idea's lifecycle from
//! a bench's kiosk to a completed action.
//!
//! - [`rules`]: the rule set, how an idea is matched against it, and validation.
//! - [`lifecycle`]: what organisations and moderators may do in which state; deadlines.
//! - [`text`]: folding (case, spacing, Cyrillic → Latin), fingerprints, redaction.
//! - [`limit`]: token buckets (ideas per bench, public requests per address).
//! - [`records`]: what is stored, and the one atomic write every change goes through.
//! - `intake` (a kiosk's idea to its ack), `network` (organisations and rule versions), `clock`,
//!   `view` (what each reader sees), [`demo`] (the demo network): parts of [`Routing`].
//!
//! [`Routing`] is the handle the rest of the control plane uses. Changes are serialised by one
//! lock and written to the store (one transaction) before they take effect in memory, are
//! acknowledged to a kiosk or are announced; deadlines live on the stored idea and are cleared
//! in the same write that acts on them, so they fire once and survive restarts.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use protocol::config::FieldError;
use protocol::idea::IdeaAck;
use protocol::{BenchId, Fleet, IdeaState, Topic, TopicKind};
use tokio::sync::{Mutex, broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::broker::{BrokerError, BrokerHandle};
use crate::metrics::{Metrics, StatusLabel};
use crate::persistence::StoreError;

mod clock;
pub mod demo;
mod intake;
pub mod lifecycle;
pub mod limit;
mod network;
pub mod records;
pub mod rules;
#[cfg(test)]
mod tests;
pub mod text;
mod view;

pub use clock::{Clock, ManualClock, SystemClock};
pub use lifecycle::{Actor, IdeaAction, LifecycleError, Notes};
pub use records::{
    IdeaCount, IdeaEvent, IdeaFilter, IdeaRecord, OrgState, Organisation, RoutingAudit, RoutingStore, RoutingWrite,
    RuleSetRecord,
};
pub use rules::{Decision, IdeaFacts, Match, Route, Rule, RuleCheck, RuleSet, Sla, Strategy};
pub(crate) use view::idea_id_of;
pub use view::{Application, IdeaChange, IdeaReport, Reader};

use limit::KeyedLimit;

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

/// Intake limits and timing: the `[ideas]` settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingSettings {
    /// Fewest characters an idea's text may have; shorter, the kiosk is told `invalid`.
    pub text_min_chars: usize,
    /// Most characters an idea's text may have (at most 4000, the wire limit); longer, the kiosk
    /// is told `invalid`.
    pub text_max_chars: usize,
    /// Ideas one bench may send in a burst (kiosks share their bench, so the limit is per
    /// bench); beyond it the kiosk is told `rate_limited` and sends again later.
    pub bench_burst: u32,
    /// Ideas one bench may send per hour after its burst.
    pub bench_per_hour: u32,
    /// Words or phrases that hold an idea for moderation instead of routing it; matched like rule
    /// keywords, at word starts in any case and script ("uvred" matches "Uvreda" and "увреда").
    pub blocklist: Vec<String>,
    /// Unauthenticated requests (applications to join, public status lookups) per client
    /// address in a burst; beyond it the answer is 429 with Retry-After.
    pub public_burst: u32,
    /// Unauthenticated requests per client address per hour after the burst.
    pub public_per_hour: u32,
    /// How often deadlines are checked (not configurable).
    #[serde(skip)]
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
    bench_limits: KeyedLimit,
}

struct Shared {
    state: Mutex<State>,
    public_limits: KeyedLimit,
    store: Arc<dyn RoutingStore>,
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
        store: Arc<dyn RoutingStore>,
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
        store: Arc<dyn RoutingStore>,
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
                    bench_limits: KeyedLimit::new(settings.bench_burst, settings.bench_per_hour, clock.clone()),
                }),
                public_limits: KeyedLimit::new(settings.public_burst, settings.public_per_hour, clock.clone()),
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
            self.shared.metrics.payload_dropped(
                bench.as_str(),
                "idea",
                crate::metrics::DROP_QUEUE_FULL,
                &"the idea queue is full (the kiosk sends it again without an ack)",
            );
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
        self.shared.public_limits.take(client)
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

    /// Routes `idea` first when it needs it (its events follow `events`), then writes the idea
    /// and all its events in one transaction and keeps the round-robin position it used. Returns
    /// the events written.
    async fn settle(
        &self,
        state: &mut State,
        idea: &mut IdeaRecord,
        mut events: Vec<IdeaEvent>,
        needs_routing: bool,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<Vec<IdeaEvent>, StoreError> {
        let mut cursor = None;
        if needs_routing {
            let (routed, c) = self.route(state, idea, now, actor).await?;
            events.extend(routed);
            cursor = c;
        }
        let write = RoutingWrite {
            ideas: vec![idea.clone()],
            events,
            cursors: cursor.clone().into_iter().collect(),
            ..RoutingWrite::default()
        };
        self.shared.store.routing_write(&write).await?;
        if let Some((key, position)) = cursor {
            state.cursors.insert(key, position);
        }
        Ok(write.events)
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

    /// Counts the transitions of `idea` and tells live clients, after a write.
    async fn announce(&self, idea: &IdeaRecord, events: &[IdeaEvent]) {
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
        for change in view::changes(idea, events) {
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
            let events = self
                .settle(&mut state, &mut idea, step.events, step.needs_routing, now, "system")
                .await?;
            if kind != "none" {
                self.shared
                    .metrics
                    .idea_deadlines_expired
                    .get_or_create(&StatusLabel { status: kind })
                    .inc();
                info!(idea.code = %idea.tracking_code, deadline = kind, idea.state = %idea.state, "idea deadline passed");
            }
            self.announce(&idea, &events).await;
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
        let events = self
            .settle(
                &mut state,
                &mut idea,
                step.events,
                step.needs_routing,
                now,
                &actor.subject,
            )
            .await?;
        drop(state);
        info!(idea.code = %idea.tracking_code, idea.action = action.as_str(), idea.state = %idea.state, user.sub = %actor.subject, "idea action");
        self.announce(&idea, &events).await;
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
