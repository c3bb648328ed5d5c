//! Store-and-forward: telemetry a bench still holds, bounded like a bench's flash ring buffer
//! (the oldest sample goes when it is full).
//!
//! A sample is held from the moment it is taken until it is safe: while waiting to be sent
//! (`queue`), and, when the bench uses storage acknowledgements, after the broker's PUBACK until
//! the control plane says it is stored (`unconfirmed`). An unconfirmed sample goes back into the
//! queue when its wait runs out or the connection is lost.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use protocol::Telemetry;
use protocol::telemetry::TelemetryAck;
use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct Outbox {
    queue: VecDeque<Telemetry>,
    /// Acknowledged by the broker, not yet confirmed stored, by `seq`.
    unconfirmed: BTreeMap<u64, Unconfirmed>,
    /// `(resend_at, seq)` in the order samples became unconfirmed, so in deadline order.
    deadlines: VecDeque<(Instant, u64)>,
    resend_after: Duration,
    capacity: usize,
    dropped: u64,
}

#[derive(Debug)]
struct Unconfirmed {
    sample: Telemetry,
    resend_at: Instant,
}

impl Outbox {
    /// Holds at most `capacity` samples; unconfirmed samples are sent again after `resend_after`.
    pub fn new(capacity: usize, resend_after: Duration) -> Self {
        Self {
            queue: VecDeque::new(),
            unconfirmed: BTreeMap::new(),
            deadlines: VecDeque::new(),
            resend_after,
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    /// Queues a new sample, dropping the oldest if full.
    pub fn push(&mut self, sample: Telemetry) {
        self.queue.push_back(sample);
        self.trim();
    }

    /// Puts samples that were in flight back at the front, in sequence order (they are older
    /// than anything still queued).
    pub fn requeue(&mut self, mut samples: Vec<Telemetry>) {
        samples.sort_by_key(|s| s.seq);
        for s in samples.into_iter().rev() {
            self.queue.push_front(s);
        }
        self.trim();
    }

    pub fn pop(&mut self) -> Option<Telemetry> {
        self.queue.pop_front()
    }

    /// Returns a sample that could not be handed over.
    pub fn unpop(&mut self, sample: Telemetry) {
        self.queue.push_front(sample);
    }

    /// The broker acknowledged `sample`: hold it until the store confirms it.
    pub fn await_storage(&mut self, sample: Telemetry, now: Instant) {
        let resend_at = now + self.resend_after;
        self.deadlines.push_back((resend_at, sample.seq));
        self.unconfirmed.insert(sample.seq, Unconfirmed { sample, resend_at });
        self.trim();
    }

    /// Releases the samples `ack` confirms; returns how many were waiting for it.
    pub fn confirm(&mut self, ack: &TelemetryAck) -> u64 {
        let mut released = 0;
        for &[first, last] in &ack.stored {
            let seqs: Vec<u64> = self.unconfirmed.range(first..=last).map(|(seq, _)| *seq).collect();
            for seq in seqs {
                self.unconfirmed.remove(&seq);
                released += 1;
            }
        }
        self.skip_stale_deadlines();
        released
    }

    /// When the next unconfirmed sample is due to be sent again.
    pub fn next_resend(&self) -> Option<Instant> {
        self.deadlines.front().map(|(at, _)| *at)
    }

    /// Moves unconfirmed samples whose wait ran out back into the queue; returns how many.
    pub fn resend_due(&mut self, now: Instant) -> usize {
        let mut due = Vec::new();
        while let Some(&(at, seq)) = self.deadlines.front() {
            if at > now {
                break;
            }
            self.deadlines.pop_front();
            if self.unconfirmed.get(&seq).is_some_and(|u| u.resend_at == at) {
                due.extend(self.unconfirmed.remove(&seq).map(|u| u.sample));
            }
        }
        self.skip_stale_deadlines();
        let n = due.len();
        self.requeue(due);
        n
    }

    /// The connection is gone and with it any ack on the way: send every unconfirmed sample
    /// again after reconnecting (the store's dedup makes that safe).
    pub fn resend_all(&mut self) {
        self.deadlines.clear();
        let all = std::mem::take(&mut self.unconfirmed)
            .into_values()
            .map(|u| u.sample)
            .collect();
        self.requeue(all);
    }

    /// Samples held: queued or waiting for the store.
    pub fn len(&self) -> usize {
        self.queue.len() + self.unconfirmed.len()
    }

    /// Samples the broker acknowledged that the store has not confirmed yet.
    pub fn unconfirmed(&self) -> usize {
        self.unconfirmed.len()
    }

    /// Samples lost to a full queue.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn skip_stale_deadlines(&mut self) {
        while let Some(&(at, seq)) = self.deadlines.front() {
            if self.unconfirmed.get(&seq).is_some_and(|u| u.resend_at == at) {
                break;
            }
            self.deadlines.pop_front();
        }
    }

    /// Drops the oldest samples beyond capacity, unconfirmed ones first (they are the oldest).
    fn trim(&mut self) {
        while self.len() > self.capacity {
            let oldest_unconfirmed = self.unconfirmed.keys().next().copied();
            let oldest_queued = self.queue.front().map(|s| s.seq);
            match (oldest_unconfirmed, oldest_queued) {
                (Some(u), Some(q)) if q < u => {
                    self.queue.pop_front();
                }
                (Some(u), _) => {
                    self.unconfirmed.remove(&u);
                    self.skip_stale_deadlines();
                }
                (None, _) => {
                    self.queue.pop_front();
                }
            }
            self.dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use protocol::telemetry::Power;

    use super::*;

    fn sample(seq: u64) -> Telemetry {
        Telemetry {
            v: 1,
            ts: "2026-11-26T10:00:00Z".parse().unwrap(),
            seq,
            power: Power {
                solar_w: 0.0,
                battery_pct: 50.0,
                battery_v: None,
                load_w: None,
            },
            network: Default::default(),
            sessions: Default::default(),
            health: Default::default(),
        }
    }

    fn drain(o: &mut Outbox) -> Vec<u64> {
        std::iter::from_fn(|| o.pop()).map(|s| s.seq).collect()
    }

    #[test]
    fn keeps_order_and_drops_the_oldest() {
        let mut o = Outbox::new(3, Duration::from_secs(30));
        for seq in 3..=5 {
            o.push(sample(seq));
        }
        o.requeue(vec![sample(2), sample(1)]);
        assert_eq!(o.len(), 3);
        assert_eq!(o.dropped(), 2);
        assert_eq!(drain(&mut o), [3, 4, 5]);
        o.push(sample(6));
        let s = o.pop().unwrap();
        o.unpop(s);
        assert_eq!(o.pop().unwrap().seq, 6);
    }

    #[test]
    fn holds_a_sample_until_the_store_confirms_it() {
        let t0 = Instant::now();
        let mut o = Outbox::new(100, Duration::from_secs(30));
        for seq in 1..=5 {
            o.await_storage(sample(seq), t0);
        }
        assert_eq!((o.len(), o.unconfirmed()), (5, 5));
        assert_eq!(o.confirm(&TelemetryAck::from_seqs([1, 2, 4, 9])), 3);
        assert_eq!(o.confirm(&TelemetryAck::from_seqs([1])), 0, "already released");
        assert_eq!(o.unconfirmed(), 2);
        assert_eq!(o.next_resend(), Some(t0 + Duration::from_secs(30)));
        assert_eq!(o.resend_due(t0 + Duration::from_secs(29)), 0);
        assert!(o.pop().is_none(), "nothing is due yet");
        assert_eq!(o.resend_due(t0 + Duration::from_secs(30)), 2);
        assert_eq!(drain(&mut o), [3, 5]);
        assert_eq!(o.next_resend(), None);
        assert_eq!(o.len(), 0);
    }

    #[test]
    fn a_lost_connection_sends_every_unconfirmed_sample_again_in_order() {
        let t0 = Instant::now();
        let mut o = Outbox::new(100, Duration::from_secs(30));
        o.push(sample(4));
        for seq in [2, 1, 3] {
            o.await_storage(sample(seq), t0);
        }
        o.resend_all();
        assert_eq!(o.unconfirmed(), 0);
        assert_eq!(o.next_resend(), None);
        assert_eq!(drain(&mut o), [1, 2, 3, 4]);
    }

    #[test]
    fn a_resent_sample_waits_afresh_and_its_old_deadline_is_ignored() {
        let t0 = Instant::now();
        let wait = Duration::from_secs(10);
        let mut o = Outbox::new(100, wait);
        o.await_storage(sample(1), t0);
        assert_eq!(o.resend_due(t0 + wait), 1);
        let s = o.pop().unwrap();
        o.await_storage(s, t0 + wait + Duration::from_secs(1));
        assert_eq!(o.next_resend(), Some(t0 + 2 * wait + Duration::from_secs(1)));
        assert_eq!(o.resend_due(t0 + 2 * wait), 0);
    }

    #[test]
    fn a_full_store_drops_the_oldest_sample_confirmed_or_not() {
        let t0 = Instant::now();
        let mut o = Outbox::new(3, Duration::from_secs(30));
        o.await_storage(sample(1), t0);
        o.await_storage(sample(2), t0);
        o.push(sample(3));
        o.push(sample(4));
        assert_eq!((o.len(), o.dropped(), o.unconfirmed()), (3, 1, 1));
        o.resend_all();
        assert_eq!(drain(&mut o), [2, 3, 4]);
    }
}
