//! One MQTT connection of a simulated bench: the rumqttc options, the task that polls rumqttc's
//! event loop, and what each publish carried, so acknowledgements and losses map back to
//! telemetry samples.
//!
//! Dropping a [`Link`] aborts the poller, which drops the socket without DISCONNECT: exactly an
//! abrupt drop, so the broker publishes the Last Will.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use protocol::{BenchId, Status, Telemetry, Topic, TopicKind};
use rand::Rng;
use rumqttc::{AsyncClient, ConnectionError, Event, LastWill, MqttOptions, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::broker::Broker;

/// What a publish carried.
#[derive(Debug, Clone)]
pub(crate) enum Tag {
    /// A telemetry sample: kept until the broker acknowledges it.
    Telemetry(Box<Telemetry>),
    /// Anything else (status, acks, ideas, faults): fire and forget at this level.
    Other,
}

/// Requests rumqttc may hold before `try_publish` fails; the session keeps its own queue.
const REQUEST_CAPACITY: usize = 64;
/// Largest packet either way; above the protocol's 16 KiB so the oversized fault gets out.
const MAX_PACKET_BYTES: usize = 64 * 1024;

/// One connection attempt or established connection.
pub(crate) struct Link {
    pub client: AsyncClient,
    events: mpsc::Receiver<Result<Event, ConnectionError>>,
    poller: JoinHandle<()>,
    /// Publishes handed to rumqttc and not yet written, oldest first.
    unsent: VecDeque<Tag>,
    /// QoS 1 publishes written and waiting for PUBACK, by packet id.
    unacked: HashMap<u16, Tag>,
    /// A clean DISCONNECT has been requested.
    pub closing: bool,
    pub opened_at: Instant,
}

impl Link {
    /// Starts connecting to `broker` as `id` with the retained Last Will `offline`.
    pub fn open(id: &BenchId, broker: &Broker, password: Option<String>, keep_alive: Duration) -> Self {
        let mut options = MqttOptions::new(id.as_str(), broker.host.clone(), broker.port);
        options
            .set_keep_alive(keep_alive)
            .set_clean_session(true)
            .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES)
            .set_last_will(LastWill::new(
                Topic::new(id.clone(), TopicKind::Status).to_string(),
                Status::last_will().to_json(),
                QoS::AtLeastOnce,
                true,
            ));
        if let Some(password) = password {
            options.set_credentials(id.as_str(), password);
        }
        let (client, mut eventloop) = AsyncClient::new(options, REQUEST_CAPACITY);
        eventloop.network_options.set_connection_timeout(5);
        let (tx, events) = mpsc::channel(256);
        // The poller is the only place that awaits rumqttc, so its futures are never cancelled
        // half-way; the session reads events from the channel.
        let poller = tokio::spawn(async move {
            loop {
                let event = eventloop.poll().await;
                let failed = event.is_err();
                if tx.send(event).await.is_err() || failed {
                    break;
                }
            }
        });
        Self {
            client,
            events,
            poller,
            unsent: VecDeque::new(),
            unacked: HashMap::new(),
            closing: false,
            opened_at: Instant::now(),
        }
    }

    /// The next event from the broker or rumqttc. Cancel-safe.
    pub async fn next_event(&mut self) -> Result<Event, ConnectionError> {
        self.events.recv().await.unwrap_or(Err(ConnectionError::RequestsDone))
    }

    /// Hands a QoS 1 publish to rumqttc. Fails when its request queue is full.
    pub fn publish(&mut self, topic: &str, payload: Vec<u8>, retain: bool, tag: Tag) -> Result<(), Tag> {
        match self.client.try_publish(topic, QoS::AtLeastOnce, retain, payload) {
            Ok(()) => {
                self.unsent.push_back(tag);
                Ok(())
            }
            Err(_) => Err(tag),
        }
    }

    pub fn subscribe(&self, topic: &str) -> bool {
        self.client.try_subscribe(topic, QoS::AtLeastOnce).is_ok()
    }

    /// rumqttc wrote a publish with packet id `pkid` (requests are written in order).
    pub fn written(&mut self, pkid: u16) {
        if let Some(tag) = self.unsent.pop_front() {
            self.unacked.insert(pkid, tag);
        }
    }

    /// The broker acknowledged `pkid`.
    pub fn acked(&mut self, pkid: u16) -> Option<Tag> {
        self.unacked.remove(&pkid)
    }

    /// Telemetry samples handed over and not yet acknowledged.
    pub fn telemetry_in_flight(&self) -> usize {
        self.unsent
            .iter()
            .chain(self.unacked.values())
            .filter(|t| matches!(t, Tag::Telemetry(_)))
            .count()
    }

    /// Closes the connection abruptly and returns the samples that were not acknowledged.
    pub fn abandon(mut self) -> Vec<Telemetry> {
        self.poller.abort();
        let mut samples: Vec<Telemetry> = self
            .unsent
            .drain(..)
            .chain(self.unacked.drain().map(|(_, t)| t))
            .filter_map(|t| match t {
                Tag::Telemetry(s) => Some(*s),
                Tag::Other => None,
            })
            .collect();
        samples.sort_by_key(|s| s.seq);
        samples
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

/// Reconnect pacing, exponential with equal jitter: attempt n waits between half and all of
/// `min * 2^n`, capped at `max`. backon's jitter stretches a wait by up to as much again, so it
/// paces from half the bounds; the seed keeps a seeded run's reconnects the same.
#[derive(Debug)]
pub(crate) struct Backoff {
    policy: ExponentialBuilder,
    waits: <ExponentialBuilder as BackoffBuilder>::Backoff,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, rng: &mut impl Rng) -> Self {
        let policy = ExponentialBuilder::new()
            .with_min_delay(min / 2)
            .with_max_delay(max.max(min) / 2)
            .with_jitter()
            .without_max_times();
        let waits = policy.with_jitter_seed(rng.random()).build();
        Self { policy, waits }
    }

    pub fn next(&mut self) -> Duration {
        self.waits.next().unwrap_or_default()
    }

    pub fn reset(&mut self, rng: &mut impl Rng) {
        self.waits = self.policy.with_jitter_seed(rng.random()).build();
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(30), &mut rng);
        let waits: Vec<_> = (0..10).map(|_| b.next()).collect();
        for (n, w) in waits.iter().enumerate() {
            let base = Duration::from_millis(500 * (1 << n)).min(Duration::from_secs(30));
            assert!(
                *w >= base / 2 && *w <= base,
                "attempt {n}: {w:?} not within {base:?}/2..{base:?}"
            );
        }
        assert_ne!(waits[8], waits[9], "jitter");
        b.reset(&mut rng);
        assert!(b.next() <= Duration::from_millis(500));
    }
}
