//! One simulated bench on the wire: what real bench firmware does over MQTT.
//!
//! It connects as its bench id with a bench token and a retained Last Will `offline`, announces
//! `online` (retained, with firmware and configuration version), samples telemetry every
//! interval, queues samples while disconnected and sends them on reconnect with their original
//! `ts` and `seq`, reconnects with exponential backoff and jitter, obeys its configuration,
//! sends citizens' ideas until acknowledged, sleeps when the battery runs low, and suffers the
//! faults it is told to.

mod config;
mod faults;
mod ideas;
mod link;
mod outbox;
mod sleep;

use std::collections::BTreeMap;
use std::future::pending;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use protocol::idea::IdeaSubmission;
use protocol::telemetry::TelemetryAck;
use protocol::{BenchId, BenchInfo, Status, Topic, TopicKind};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rumqttc::{ConnectionError, Event, Outgoing, Packet};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::bench::BenchModel;
use crate::broker::Broker;
use crate::clock::SimClock;
use crate::config::{ConfigAck, RunningConfig};
use crate::credentials::{Credentials, wrong_token};
use crate::faults::Fault;
use crate::ideas::IdeaPace;
use crate::usage::Features;
use crate::weather::splitmix64;

pub(crate) use link::Backoff;
use link::{Link, Tag};
use outbox::Outbox;

/// Telemetry samples handed to the MQTT client at once; the rest waits in the outbox.
const WINDOW: usize = 10;
/// Benches of a fleet take their first sample within this long of the start.
const MAX_STAGGER: Duration = Duration::from_secs(2);
/// How long a rebooting bench stays off the network.
const BOOT_TIME: Duration = Duration::from_secs(3);
/// Ideas kept waiting for an ack at most; older ones are given up.
const MAX_OUTSTANDING_IDEAS: usize = 100;
/// How long a clean shutdown waits for the broker.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a bench stands with its broker.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LinkState {
    /// Not connected; waiting to retry.
    #[default]
    Down,
    /// TCP/MQTT handshake under way.
    Connecting,
    /// Connected and announced `online`.
    Online,
    /// Battery saving: announced `sleeping` and disconnected.
    Sleeping,
}

/// What a bench has done so far; tests and the fleet handle watch it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BenchSnapshot {
    pub link: LinkState,
    /// Successful connections (CONNACK accepted).
    pub connects: u64,
    /// The `seq` of the latest sample taken.
    pub seq: u64,
    /// Samples the broker acknowledged (PUBACK).
    pub acked: u64,
    /// Samples the control plane confirmed as stored (storage acknowledgements).
    pub stored_acked: u64,
    /// Samples held: waiting, in flight, or acknowledged by the broker and not yet confirmed
    /// stored.
    pub queued: usize,
    /// Of `queued`, those the broker acknowledged that wait for the store's confirmation.
    pub unconfirmed: usize,
    /// Samples lost to a full store-and-forward queue.
    pub dropped: u64,
    /// The configuration version running.
    pub config_version: u64,
    pub telemetry_interval: Duration,
    pub battery_pct: f64,
    /// Idea messages published, retries included.
    pub ideas_sent: u64,
    /// Ideas the server stored (`received` or `duplicate`).
    pub ideas_acked: u64,
    /// `rate_limited` answers (the idea is sent again later).
    pub ideas_rate_limited: u64,
    /// Ideas given up: answered `invalid`, or never answered.
    pub ideas_given_up: u64,
    pub faults_injected: u64,
}

/// Tunables shared by every bench of a fleet.
#[derive(Debug, Clone)]
pub(crate) struct Behaviour {
    pub broker: Broker,
    pub credentials: Credentials,
    pub clock: SimClock,
    pub fw: String,
    pub ideas: IdeaPace,
    pub idea_retry: Duration,
    pub config_reject_rate: f64,
    pub queue_capacity: usize,
    /// Hold samples until the control plane confirms them stored, not only until PUBACK.
    pub storage_acks: bool,
    /// Send an unconfirmed sample again after this long.
    pub storage_ack_timeout: Duration,
    /// Stop sampling after this many samples (and keep delivering them).
    pub max_samples: Option<u64>,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub keep_alive: Duration,
    pub sleep_below_pct: f64,
    pub wake_above_pct: f64,
}

enum Connection {
    Down { retry_at: Option<Instant> },
    Connecting(Link),
    Up(Link),
}

impl Connection {
    fn link_mut(&mut self) -> Option<&mut Link> {
        match self {
            Self::Connecting(l) | Self::Up(l) => Some(l),
            Self::Down { .. } => None,
        }
    }

    fn up(&mut self) -> Option<&mut Link> {
        match self {
            Self::Up(l) => Some(l),
            _ => None,
        }
    }

    async fn next_event(&mut self) -> Result<Event, ConnectionError> {
        match self.link_mut() {
            Some(link) => link.next_event().await,
            None => pending().await,
        }
    }
}

enum Mode {
    Awake,
    /// Announced `sleeping` until `until`; checks in again at `check_in_at` if still low.
    Asleep {
        until: DateTime<Utc>,
        check_in_at: Instant,
    },
}

struct Outstanding {
    idea: IdeaSubmission,
    /// Sends since the last answer; without an answer after the last, the idea is given up.
    attempts: u32,
    /// `rate_limited` answers so far.
    limited: u32,
    next_at: Option<Instant>,
}

/// Time-limited fault effects.
#[derive(Default)]
struct ActiveFaults {
    flapping: Option<(Instant, Duration)>,
    next_flap: Option<Instant>,
    skew: Option<(TimeDelta, Option<Instant>)>,
    stuck_until: Option<Instant>,
    wrong_tokens_left: u32,
}

/// The state machine of one bench.
pub(crate) struct Session {
    id: BenchId,
    topics: Topics,
    peers: Vec<BenchId>,
    cfg: Behaviour,
    model: BenchModel,
    rng: StdRng,
    conn: Connection,
    mode: Mode,
    outbox: Outbox,
    backoff: Backoff,
    seq: u64,
    last_tick: Instant,
    next_sample: Instant,
    running: RunningConfig,
    last_ack: Option<ConfigAck>,
    /// Ideas waiting for an answer, by `idea_id`.
    ideas: BTreeMap<String, Outstanding>,
    /// When the last idea was drafted, for [`IdeaPace::AtMostEvery`].
    last_idea_at: Option<Instant>,
    faults: ActiveFaults,
    stats: BenchSnapshot,
    snapshot: watch::Sender<BenchSnapshot>,
    commands: mpsc::Receiver<Fault>,
    commands_open: bool,
    shutdown: CancellationToken,
}

struct Topics {
    telemetry: String,
    telemetry_ack: String,
    status: String,
    config: String,
    config_ack: String,
    ideas: String,
    ideas_ack: String,
}

impl Topics {
    fn new(id: &BenchId) -> Self {
        let t = |kind| Topic::new(id.clone(), kind).to_string();
        Self {
            telemetry: t(TopicKind::Telemetry),
            telemetry_ack: t(TopicKind::TelemetryAck),
            status: t(TopicKind::Status),
            config: t(TopicKind::Config),
            config_ack: t(TopicKind::ConfigAck),
            ideas: t(TopicKind::Ideas),
            ideas_ack: t(TopicKind::IdeasAck),
        }
    }
}

impl Session {
    /// A bench that starts sampling at the clock's origin (plus a seeded stagger of up to
    /// [`MAX_STAGGER`], so a fleet does not report in lockstep).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        info: &BenchInfo,
        seed: u64,
        interval: Duration,
        peers: Vec<BenchId>,
        cfg: Behaviour,
        commands: mpsc::Receiver<Fault>,
        snapshot: watch::Sender<BenchSnapshot>,
        shutdown: CancellationToken,
    ) -> Self {
        let origin = cfg.clock.origin();
        let model = BenchModel::new(seed, info.location.lat, info.location.lon, cfg.clock.sim_at(origin));
        let mut rng = StdRng::seed_from_u64(splitmix64(seed ^ 0xB0B));
        let stagger = interval.min(MAX_STAGGER).mul_f64(rng.random::<f64>());
        let backoff = Backoff::new(cfg.backoff_min, cfg.backoff_max, &mut rng);
        let outbox = Outbox::new(cfg.queue_capacity, cfg.storage_ack_timeout);
        let running = RunningConfig {
            version: 0,
            telemetry_interval: interval,
            features: Features::default(),
        };
        Self {
            id: info.id.clone(),
            topics: Topics::new(&info.id),
            peers,
            model,
            rng,
            conn: Connection::Down { retry_at: Some(origin) },
            mode: Mode::Awake,
            outbox,
            backoff,
            seq: 0,
            last_tick: origin,
            next_sample: origin + stagger,
            running,
            last_ack: None,
            ideas: BTreeMap::new(),
            last_idea_at: None,
            faults: ActiveFaults::default(),
            stats: BenchSnapshot {
                telemetry_interval: interval,
                ..BenchSnapshot::default()
            },
            snapshot,
            commands,
            commands_open: true,
            shutdown,
            cfg,
        }
    }

    /// Runs until `shutdown`, then says goodbye (retained `offline`, DISCONNECT).
    pub async fn run(mut self) {
        loop {
            self.publish_snapshot();
            let retry_at = match self.conn {
                Connection::Down { retry_at } => retry_at,
                _ => None,
            };
            let timer = self.next_timer();
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => break,
                cmd = self.commands.recv(), if self.commands_open => match cmd {
                    Some(fault) => self.inject(fault),
                    None => self.commands_open = false,
                },
                event = self.conn.next_event() => self.on_event(event),
                () = sleep_until(self.next_sample) => self.on_tick(),
                () = sleep_opt(retry_at) => self.connect(),
                () = sleep_opt(timer) => self.on_timer(),
            }
        }
        self.goodbye().await;
        self.stats.link = LinkState::Down;
        self.publish_snapshot();
    }

    fn publish_snapshot(&mut self) {
        self.stats.queued = self.outbox.len() + self.conn.link_mut().map_or(0, |l| l.telemetry_in_flight());
        self.stats.unconfirmed = self.outbox.unconfirmed();
        self.stats.dropped = self.outbox.dropped();
        self.stats.battery_pct = self.model.battery_pct();
        self.stats.config_version = self.running.version;
        self.stats.telemetry_interval = self.running.telemetry_interval;
        self.stats.seq = self.seq;
        self.stats.link = match (&self.conn, &self.mode) {
            (_, Mode::Asleep { .. }) => LinkState::Sleeping,
            (Connection::Up(_), _) => LinkState::Online,
            (Connection::Connecting(_), _) => LinkState::Connecting,
            (Connection::Down { .. }, _) => LinkState::Down,
        };
        let stats = &self.stats;
        self.snapshot.send_if_modified(|s| {
            let changed = s != stats;
            if changed {
                s.clone_from(stats);
            }
            changed
        });
    }

    // ---- connection ----

    fn connect(&mut self) {
        let password = if self.faults.wrong_tokens_left > 0 {
            self.faults.wrong_tokens_left -= 1;
            Some(wrong_token(&self.id))
        } else {
            self.cfg.credentials.password(&self.id)
        };
        debug!(bench.id = %self.id, broker = %self.cfg.broker, "connecting");
        self.conn = Connection::Connecting(Link::open(&self.id, &self.cfg.broker, password, self.cfg.keep_alive));
    }

    fn on_event(&mut self, event: Result<Event, ConnectionError>) {
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => self.on_connected(),
            Ok(Event::Incoming(Packet::PubAck(ack))) => self.on_puback(ack.pkid),
            Ok(Event::Incoming(Packet::Publish(p))) => self.on_message(&p.topic, &p.payload),
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                if let Some(link) = self.conn.link_mut() {
                    link.written(pkid);
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => self.on_clean_disconnect(),
            Ok(_) => {}
            Err(e) => self.on_connection_lost(&e),
        }
    }

    fn on_connected(&mut self) {
        let link = match std::mem::replace(&mut self.conn, Connection::Down { retry_at: None }) {
            Connection::Connecting(link) | Connection::Up(link) => link,
            down @ Connection::Down { .. } => {
                self.conn = down;
                return;
            }
        };
        let connect_ms = link.opened_at.elapsed().as_millis();
        self.conn = Connection::Up(link);
        self.backoff.reset(&mut self.rng);
        self.stats.connects += 1;
        if let Mode::Asleep { until, .. } = self.mode {
            info!(bench.id = %self.id, until = %until, "checking in while asleep");
            self.announce_sleep(until);
            return;
        }
        info!(bench.id = %self.id, connect_ms, queued = self.outbox.len(), "connected");
        let Some(link) = self.conn.up() else { return };
        // Subscribed before any sample goes out, so every batch holding one is acknowledged.
        if self.cfg.storage_acks {
            link.subscribe(&self.topics.telemetry_ack);
        }
        link.subscribe(&self.topics.config);
        if self.cfg.ideas.is_on() {
            link.subscribe(&self.topics.ideas_ack);
        }
        self.publish_status();
        let now = Instant::now();
        for o in self.ideas.values_mut() {
            o.next_at = Some(now);
        }
        self.pump();
    }

    fn on_connection_lost(&mut self, error: &ConnectionError) {
        let was_up = matches!(self.conn, Connection::Up(_));
        let conn = std::mem::replace(&mut self.conn, Connection::Down { retry_at: None });
        if let Connection::Connecting(link) | Connection::Up(link) = conn {
            self.outbox.requeue(link.abandon());
        }
        self.outbox.resend_all();
        let retry_at = match self.mode {
            Mode::Awake => {
                let wait = self.backoff.next();
                if let ConnectionError::ConnectionRefused(code) = error {
                    warn!(bench.id = %self.id, code = ?code, retry_in_ms = wait.as_millis(), "broker refused the connection");
                } else if was_up {
                    info!(bench.id = %self.id, error = %error, retry_in_ms = wait.as_millis(), "connection lost");
                } else {
                    info!(bench.id = %self.id, error = %error, retry_in_ms = wait.as_millis(), "connection failed");
                }
                Some(Instant::now() + wait)
            }
            Mode::Asleep { .. } => None,
        };
        self.conn = Connection::Down { retry_at };
    }

    /// Drops the connection without DISCONNECT: the broker fires the Last Will.
    fn drop_abruptly(&mut self, retry_after: Option<Duration>) {
        let conn = std::mem::replace(&mut self.conn, Connection::Down { retry_at: None });
        if let Connection::Connecting(link) | Connection::Up(link) = conn {
            self.outbox.requeue(link.abandon());
        }
        self.outbox.resend_all();
        let wait = retry_after.unwrap_or_else(|| self.backoff.next());
        self.conn = Connection::Down {
            retry_at: Some(Instant::now() + wait),
        };
    }

    fn on_clean_disconnect(&mut self) {
        let conn = std::mem::replace(&mut self.conn, Connection::Down { retry_at: None });
        if let Connection::Connecting(link) | Connection::Up(link) = conn {
            self.outbox.requeue(link.abandon());
        }
        self.outbox.resend_all();
        // Woken up while announcing sleep: come straight back.
        if matches!(self.mode, Mode::Awake) {
            self.conn = Connection::Down {
                retry_at: Some(Instant::now()),
            };
        }
    }

    fn publish_status(&mut self) {
        let status = Status::online(self.cfg.fw.clone(), self.running.version);
        let topic = self.topics.status.clone();
        self.publish_other(&topic, status.to_json(), true);
    }

    fn publish_other(&mut self, topic: &str, payload: Vec<u8>, retain: bool) -> bool {
        let Some(link) = self.conn.up() else {
            return false;
        };
        if link.publish(topic, payload, retain, Tag::Other).is_err() {
            warn!(bench.id = %self.id, topic, "MQTT request queue full; message dropped");
            return false;
        }
        true
    }

    /// Hands queued samples to the client, at most [`WINDOW`] in flight.
    fn pump(&mut self) {
        let Connection::Up(link) = &mut self.conn else {
            return;
        };
        if link.closing {
            return;
        }
        while link.telemetry_in_flight() < WINDOW {
            let Some(sample) = self.outbox.pop() else {
                break;
            };
            let payload = serde_json::to_vec(&sample).unwrap_or_default();
            if let Err(Tag::Telemetry(sample)) =
                link.publish(&self.topics.telemetry, payload, false, Tag::Telemetry(Box::new(sample)))
            {
                self.outbox.unpop(*sample);
                break;
            }
        }
    }

    fn on_puback(&mut self, pkid: u16) {
        let Some(link) = self.conn.link_mut() else {
            return;
        };
        if let Some(Tag::Telemetry(sample)) = link.acked(pkid) {
            self.stats.acked += 1;
            if self.cfg.storage_acks {
                self.outbox.await_storage(*sample, Instant::now());
            }
            self.pump();
        }
    }

    /// The control plane stored some of this bench's samples.
    fn on_storage_ack(&mut self, payload: &[u8]) {
        match TelemetryAck::decode(payload) {
            Ok(ack) => self.stats.stored_acked += self.outbox.confirm(&ack),
            Err(e) => warn!(bench.id = %self.id, error = %e, "unreadable storage ack ignored"),
        }
    }

    /// Samples the store has not confirmed in time go out again.
    fn resend_unconfirmed(&mut self, now: Instant) {
        let due = self.outbox.resend_due(now);
        if due > 0 {
            debug!(bench.id = %self.id, samples = due, "no storage ack in time; sending again");
            self.pump();
        }
    }

    // ---- sampling, sleep ----

    fn on_tick(&mut self) {
        let now = Instant::now();
        let scheduled = self.next_sample;
        self.last_tick = scheduled;
        let mut next = scheduled + self.running.telemetry_interval;
        if next < now {
            // The process was stalled: skip the missed samples rather than burst.
            next = now + self.running.telemetry_interval;
        }
        self.next_sample = next;
        let target = self.cfg.clock.sim_at(scheduled);
        self.model.advance(target - self.model.now());

        match self.mode {
            Mode::Awake if self.model.battery_pct() < self.cfg.sleep_below_pct => self.go_to_sleep(),
            Mode::Awake if self.cfg.max_samples.is_some_and(|max| self.seq >= max) => {}
            Mode::Awake => {
                self.seq += 1;
                let sample = self.model.telemetry(self.wall_now(), self.seq);
                self.outbox.push(sample);
                self.pump();
                self.draft_ideas();
            }
            Mode::Asleep { .. } if self.model.battery_pct() >= self.cfg.wake_above_pct => self.wake(),
            Mode::Asleep { check_in_at, .. } if now >= check_in_at => self.check_in(),
            Mode::Asleep { .. } => {}
        }
    }

    /// Wall-clock time as the bench's (possibly skewed) clock reads it.
    fn wall_now(&self) -> DateTime<Utc> {
        Utc::now() + self.faults.skew.map_or(TimeDelta::zero(), |(offset, _)| offset)
    }

    // ---- shutdown ----

    async fn goodbye(&mut self) {
        let Some(link) = self.conn.up() else { return };
        let status = Status::last_will().to_json();
        let sent = link.publish(&self.topics.status, status, true, Tag::Other).is_ok();
        if sent && link.client.try_disconnect().is_ok() {
            let deadline = Instant::now() + GOODBYE_TIMEOUT;
            loop {
                match tokio::time::timeout_at(deadline, link.next_event()).await {
                    Ok(Ok(Event::Outgoing(Outgoing::Disconnect))) | Ok(Err(_)) | Err(_) => break,
                    Ok(Ok(_)) => {}
                }
            }
        }
        info!(bench.id = %self.id, "disconnected");
        self.conn = Connection::Down { retry_at: None };
    }
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => pending().await,
    }
}
