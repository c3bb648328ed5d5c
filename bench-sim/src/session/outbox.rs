//! Store-and-forward: telemetry waiting for a connection, bounded like a bench's flash ring
//! buffer (the oldest sample goes when it is full).

use std::collections::VecDeque;

use protocol::Telemetry;

#[derive(Debug)]
pub(crate) struct Outbox {
    queue: VecDeque<Telemetry>,
    capacity: usize,
    dropped: u64,
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Self {
            queue: VecDeque::new(),
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
    pub fn requeue(&mut self, samples: Vec<Telemetry>) {
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

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Samples lost to a full queue.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    fn trim(&mut self) {
        while self.queue.len() > self.capacity {
            self.queue.pop_front();
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

    #[test]
    fn keeps_order_and_drops_the_oldest() {
        let mut o = Outbox::new(3);
        for seq in 3..=5 {
            o.push(sample(seq));
        }
        o.requeue(vec![sample(1), sample(2)]);
        assert_eq!(o.len(), 3);
        assert_eq!(o.dropped(), 2);
        let seqs: Vec<_> = std::iter::from_fn(|| o.pop()).map(|s| s.seq).collect();
        assert_eq!(seqs, [3, 4, 5]);
        o.push(sample(6));
        let s = o.pop().unwrap();
        o.unpop(s);
        assert_eq!(o.pop().unwrap().seq, 6);
    }
}
