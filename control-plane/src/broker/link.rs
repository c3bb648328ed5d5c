//! The in-process link between the router and the rest of the control plane.
//!
//! Inbound: one local rumqttd link subscribed to every bench -> server topic. Its consumer task
//! only reads, answers `Unschedule` with `wake()` (without it the router stops delivering after
//! a few hundred messages) and `try_send`s into a bounded queue. Anything slower would let the
//! router's commit log overrun the consumer, and the router would silently skip messages it has
//! already acknowledged to benches. A full queue drops the message, counts it and warns
//! (rate-limited); an overrun that happens anyway is detected from the log offsets, counted and
//! warned about too.
//!
//! Outbound: server -> bench publishes (config, idea acknowledgements) go through the same link
//! from a separate task, fed by a bounded queue so `BrokerHandle::publish` never blocks.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use protocol::{Topic, TopicKind};
use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::protocol::{Packet, Publish};
use rumqttd::{Forward, Notification};
use tokio::sync::mpsc;
use tracing::{debug, error, warn};

use super::{BrokerError, Stats};

/// The client id of the control plane's link. Bench ids cannot contain `_`, so no bench can take
/// this id over (rumqttd drops the older of two connections with one id).
pub(crate) const LINK_CLIENT_ID: &str = "_control-plane";

/// Every bench -> server topic, for all benches.
pub(crate) const LINK_FILTERS: [&str; 4] = [
    "benches/+/telemetry",
    "benches/+/status",
    "benches/+/ideas",
    "benches/+/config/ack",
];

/// Capacity of the queue behind `BrokerHandle::publish`.
pub(crate) const OUTBOUND_CAPACITY: usize = 1024;

/// At most one warning per this interval about dropped or skipped messages.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// A message a bench published, as the control plane receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    pub topic: Topic,
    pub payload: Bytes,
    /// When the link took the message from the router (the broker does not record arrival).
    pub received_at: DateTime<Utc>,
}

/// A server -> bench publish waiting for the router.
#[derive(Debug)]
pub(crate) struct Outbound {
    pub topic: String,
    pub payload: Bytes,
    pub retain: bool,
}

/// Logs at most once per interval and counts what it held back.
struct Throttle {
    last: Option<Instant>,
    held: u64,
}

impl Throttle {
    fn new() -> Self {
        Self { last: None, held: 0 }
    }

    /// `Some(n)` when a warning may go out now; `n` events were held back since the last one.
    fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < WARN_EVERY => {
                self.held += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.held))
            }
        }
    }
}

/// Where each link filter's log was last read, to notice when the router skipped ahead.
struct Offsets([Option<u64>; TopicKind::ALL.len()]);

impl Offsets {
    /// Records `offset` for `kind` and returns how many messages were skipped before it.
    fn advance(&mut self, kind: TopicKind, offset: u64) -> u64 {
        let i = TopicKind::ALL.iter().position(|k| *k == kind).unwrap_or(0);
        let skipped = match self.0[i] {
            Some(last) if offset > last + 1 => offset - last - 1,
            _ => 0,
        };
        self.0[i] = Some(offset);
        skipped
    }
}

/// Reads the link until the router goes away. Never blocks on the queue.
pub(crate) async fn consume(mut rx: LinkRx, queue: mpsc::Sender<Inbound>, stats: Arc<Stats>) {
    let mut offsets = Offsets([None; TopicKind::ALL.len()]);
    let mut full_warning = Throttle::new();
    let mut skip_warning = Throttle::new();
    loop {
        let forward = match rx.next().await {
            Ok(Some(Notification::Forward(forward))) => forward,
            Ok(Some(Notification::Unschedule)) => {
                if rx.wake().await.is_err() {
                    break;
                }
                continue;
            }
            // Acknowledgements of the link's own subscriptions, or a wake-up with nothing new.
            Ok(_) => continue,
            Err(e) => {
                if !stats.stopping.load(Ordering::Acquire) {
                    error!(error = %e, "the MQTT router closed the control plane's link");
                }
                break;
            }
        };
        let Forward { cursor, publish, .. } = forward;
        let Some(topic) = std::str::from_utf8(&publish.topic).ok().and_then(Topic::parse) else {
            debug!(topic = ?publish.topic, "ignoring a message on a topic outside the protocol");
            continue;
        };
        // Retained messages replayed at subscription time carry no log offset.
        if let Some((_, offset)) = cursor {
            let skipped = offsets.advance(topic.kind, offset);
            stats.forwarded_inbound.fetch_add(1 + skipped, Ordering::AcqRel);
            if skipped > 0 {
                let total = stats.skipped_inbound.fetch_add(skipped, Ordering::Relaxed) + skipped;
                if let Some(held) = skip_warning.allow(Instant::now()) {
                    warn!(
                        topic.kind = topic.kind.label(),
                        skipped,
                        skipped.total = total,
                        warnings.held = held,
                        "the MQTT router skipped messages the control plane had not read; raise link_segment_bytes/count"
                    );
                }
            }
        }
        let message = Inbound {
            topic,
            payload: publish.payload,
            received_at: Utc::now(),
        };
        if let Err(e) = queue.try_send(message) {
            let total = stats.dropped_inbound.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(held) = full_warning.allow(Instant::now()) {
                let bench = match &e {
                    mpsc::error::TrySendError::Full(m) | mpsc::error::TrySendError::Closed(m) => m.topic.bench.clone(),
                };
                let closed = matches!(e, mpsc::error::TrySendError::Closed(_));
                warn!(
                    bench.id = %bench,
                    dropped.total = total,
                    warnings.held = held,
                    queue.closed = closed,
                    "inbound queue full, dropping a bench message"
                );
            }
        }
    }
}

/// Subscribes the link to every bench -> server topic.
pub(crate) fn subscribe(tx: &mut LinkTx) -> Result<(), BrokerError> {
    for filter in LINK_FILTERS {
        tx.subscribe(filter).map_err(|e| BrokerError::Link(e.to_string()))?;
    }
    Ok(())
}

/// Feeds server -> bench publishes to the router until the queue closes.
pub(crate) async fn publish(mut tx: LinkTx, mut queue: mpsc::Receiver<Outbound>) {
    while let Some(Outbound { topic, payload, retain }) = queue.recv().await {
        let packet = Packet::Publish(Publish::new(Bytes::from(topic), payload, retain), None);
        // `send` waits on the router's channel without yielding; the router drains it promptly.
        if let Err(e) = tx.send(packet).await {
            error!(error = %e, "the MQTT router closed the control plane's link");
            break;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn offsets_count_gaps_per_topic_kind() {
        let mut o = Offsets([None; TopicKind::ALL.len()]);
        assert_eq!(o.advance(TopicKind::Telemetry, 7), 0);
        assert_eq!(o.advance(TopicKind::Telemetry, 8), 0);
        assert_eq!(o.advance(TopicKind::Status, 0), 0);
        assert_eq!(o.advance(TopicKind::Telemetry, 20), 11);
        assert_eq!(o.advance(TopicKind::Status, 1), 0);
    }

    #[test]
    fn throttle_lets_one_through_per_interval_and_counts_the_rest() {
        let mut t = Throttle::new();
        let t0 = Instant::now();
        assert_eq!(t.allow(t0), Some(0));
        assert_eq!(t.allow(t0 + Duration::from_secs(1)), None);
        assert_eq!(t.allow(t0 + Duration::from_secs(2)), None);
        assert_eq!(t.allow(t0 + WARN_EVERY + Duration::from_secs(1)), Some(2));
    }
}
