//! One load-test connection: its rumqttc client, the task that polls its event loop, and the
//! bookkeeping that turns PUBACKs into latencies measured from the intended send time.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use hdrhistogram::Histogram;
use protocol::telemetry::TelemetryAck;
use protocol::{BenchId, Telemetry, Topic, TopicKind};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{LoadOptions, Shared};

/// Messages a client may hold before `try_publish` fails (counted as lost).
const CLIENT_QUEUE: usize = 1000;

/// One connection, as the scheduler sees it.
pub(super) struct Slot {
    pub client: AsyncClient,
    topic: String,
    /// Where the control plane confirms stored samples.
    ack_topic: String,
    /// Intended send times and `seq` of messages handed to the client and not yet written, in
    /// order.
    intended: Mutex<VecDeque<(Instant, u64)>>,
    pub alive: AtomicBool,
    seq: AtomicU64,
}

/// Hands one scheduled message to its client; false if it could not be.
pub(super) fn send(slot: &Slot, template: &Telemetry, intended: Instant, shared: &Shared) -> bool {
    if !slot.alive.load(Ordering::Relaxed) {
        return false;
    }
    let mut sample = template.clone();
    sample.seq = slot.seq.fetch_add(1, Ordering::Relaxed) + 1;
    sample.ts = Utc::now();
    let payload = serde_json::to_vec(&sample).unwrap_or_default();
    // Holding the lock across try_publish keeps `intended` in the order rumqttc writes.
    let Ok(mut queue) = slot.intended.lock() else {
        return false;
    };
    match slot.client.try_publish(slot.topic.as_str(), shared.qos, false, payload) {
        Ok(()) => {
            queue.push_back((intended, sample.seq));
            shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(_) => false,
    }
}

pub(super) fn open(
    opts: &LoadOptions,
    id: &BenchId,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) -> (Arc<Slot>, impl Future<Output = ()> + Send + 'static) {
    let mut options = MqttOptions::new(id.as_str(), opts.broker.host.clone(), opts.broker.port);
    options
        .set_keep_alive(Duration::from_secs(60))
        .set_clean_session(true)
        .set_inflight(100);
    if let Some(password) = opts.credentials.password(id) {
        options.set_credentials(id.as_str(), password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, CLIENT_QUEUE);
    eventloop
        .network_options
        .set_connection_timeout(opts.connect_grace.as_secs().max(5));
    let slot = Arc::new(Slot {
        client,
        topic: Topic::new(id.clone(), TopicKind::Telemetry).to_string(),
        ack_topic: Topic::new(id.clone(), TopicKind::TelemetryAck).to_string(),
        intended: Mutex::new(VecDeque::new()),
        alive: AtomicBool::new(false),
        seq: AtomicU64::new(0),
    });
    let me = slot.clone();
    let poller = async move {
        let opened = Instant::now();
        let mut inflight: HashMap<u16, Instant> = HashMap::new();
        // Written and not yet confirmed stored: intended send time by `seq`.
        let mut unstored: BTreeMap<u64, Instant> = BTreeMap::new();
        let c = &shared.counters;
        let mut connected = false;
        loop {
            let event = tokio::select! {
                () = cancel.cancelled() => break,
                e = eventloop.poll() => e,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    connected = true;
                    record(&shared.connect, opened.elapsed());
                    // Subscribed before the first sample, so every batch holding one is acked.
                    if shared.storage_acks {
                        let _ = me.client.try_subscribe(me.ack_topic.as_str(), QoS::AtLeastOnce);
                    }
                    me.alive.store(true, Ordering::Relaxed);
                    c.connected.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                    let written = me.intended.lock().ok().and_then(|mut q| q.pop_front());
                    c.written.fetch_add(1, Ordering::Relaxed);
                    if let (true, Some((intended, seq))) = (shared.storage_acks, written) {
                        unstored.insert(seq, intended);
                    }
                    match (shared.qos, written.map(|(intended, _)| intended)) {
                        (QoS::AtMostOnce, _) => {
                            c.acked.fetch_add(1, Ordering::Relaxed);
                        }
                        (_, Some(intended)) => {
                            inflight.insert(pkid, intended);
                        }
                        (_, None) => {}
                    }
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    if let Some(intended) = inflight.remove(&ack.pkid) {
                        record(&shared.latency, intended.elapsed());
                        c.acked.fetch_add(1, Ordering::Relaxed);
                        if let Ok(Some(start)) = shared.send_start.lock().map(|s| *s) {
                            let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                            c.last_ack_ns.fetch_max(ns, Ordering::Relaxed);
                        }
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic == me.ack_topic => {
                    confirm(&p.payload, &mut unstored, &shared);
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                Ok(_) => {}
                Err(e) => {
                    if let Ok(mut first) = shared.first_error.lock() {
                        first.get_or_insert_with(|| format!("{}: {e}", me.topic));
                    }
                    if connected {
                        c.disconnected.fetch_add(1, Ordering::Relaxed);
                    } else {
                        c.connect_failed.fetch_add(1, Ordering::Relaxed);
                    }
                    break;
                }
            }
        }
        // Whatever was handed over and not acknowledged is lost with this connection.
        me.alive.store(false, Ordering::Relaxed);
        let queued = me.intended.lock().map(|mut q| q.drain(..).count()).unwrap_or(0);
        c.abandoned
            .fetch_add((queued + inflight.len()) as u64, Ordering::Relaxed);
        if shared.storage_acks {
            c.unstored_abandoned
                .fetch_add((queued + unstored.len()) as u64, Ordering::Relaxed);
        }
    };
    (slot, poller)
}

/// A storage acknowledgement: the samples it names are stored.
fn confirm(payload: &[u8], unstored: &mut BTreeMap<u64, Instant>, shared: &Shared) {
    let Ok(ack) = TelemetryAck::decode(payload) else {
        return;
    };
    let now = Instant::now();
    let mut confirmed = 0;
    if let Ok(mut h) = shared.storage_latency.lock() {
        for &[first, last] in &ack.stored {
            let seqs: Vec<u64> = unstored.range(first..=last).map(|(seq, _)| *seq).collect();
            for seq in seqs {
                if let Some(intended) = unstored.remove(&seq) {
                    let us = u64::try_from((now - intended).as_micros()).unwrap_or(u64::MAX).max(1);
                    h.saturating_record(us);
                    confirmed += 1;
                }
            }
        }
    }
    let c = &shared.counters;
    c.stored_acked.fetch_add(confirmed, Ordering::Relaxed);
    if let Ok(Some(start)) = shared.send_start.lock().map(|s| *s) {
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        c.last_stored_ns.fetch_max(ns, Ordering::Relaxed);
    }
}

fn record(h: &Mutex<Histogram<u64>>, d: Duration) {
    if let Ok(mut h) = h.lock() {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        h.saturating_record(us);
    }
}
