//! The storage acknowledgement (`benches/{id}/telemetry/ack`, server → bench, QoS 1): which of a
//! bench's samples are now durable in the store.
//!
//! PUBACK only says the broker received a sample; this says the database committed it. A bench
//! that subscribes keeps every sample until an ack covers its `seq` and sends it again after a
//! timeout otherwise: with the store's `(bench, seq, ts)` dedup that is at-least-once delivery and
//! exactly-once storage.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Rejection, decode_payload};
use crate::PAYLOAD_VERSION;

/// Samples of one bench that are stored: their `seq` numbers as inclusive ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TelemetryAck {
    pub v: u32,
    /// Inclusive `[first, last]` ranges of `seq`, ascending and disjoint, e.g. `[[40, 45], [47, 47]]`.
    pub stored: Vec<[u64; 2]>,
}

impl TelemetryAck {
    /// The ack for these `seq` numbers (any order, repeats allowed): merged into ranges.
    pub fn from_seqs(seqs: impl IntoIterator<Item = u64>) -> Self {
        let mut seqs: Vec<u64> = seqs.into_iter().collect();
        seqs.sort_unstable();
        seqs.dedup();
        let mut stored: Vec<[u64; 2]> = Vec::new();
        for seq in seqs {
            match stored.last_mut() {
                Some(range) if range[1].checked_add(1) == Some(seq) => range[1] = seq,
                _ => stored.push([seq, seq]),
            }
        }
        Self {
            v: PAYLOAD_VERSION,
            stored,
        }
    }

    /// Whether the sample numbered `seq` is stored.
    pub fn contains(&self, seq: u64) -> bool {
        // Ranges are ascending: find the last one starting at or before `seq`.
        let i = self.stored.partition_point(|r| r[0] <= seq);
        i > 0 && seq <= self.stored[i - 1][1]
    }

    /// How many samples the ack covers.
    pub fn len(&self) -> u64 {
        self.stored
            .iter()
            .map(|[first, last]| last.saturating_sub(*first).saturating_add(1))
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.stored.is_empty()
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(payload: &[u8]) -> Result<Self, Rejection> {
        decode_payload(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seqs_merge_into_ascending_ranges() {
        let ack = TelemetryAck::from_seqs([47, 41, 40, 42, 45, 43, 44, 41, 50]);
        assert_eq!(ack.stored, [[40, 45], [47, 47], [50, 50]]);
        assert_eq!(ack.len(), 8);
        for seq in [40, 43, 45, 47, 50] {
            assert!(ack.contains(seq), "{seq}");
        }
        for seq in [0, 39, 46, 48, 49, 51, u64::MAX] {
            assert!(!ack.contains(seq), "{seq}");
        }
        assert!(TelemetryAck::from_seqs([]).is_empty());
        assert_eq!(
            TelemetryAck::from_seqs([u64::MAX, u64::MAX - 1]).stored,
            [[u64::MAX - 1, u64::MAX]]
        );
    }

    #[test]
    fn round_trips_as_compact_json() {
        let ack = TelemetryAck::from_seqs([1, 2, 3, 7]);
        assert_eq!(
            String::from_utf8(ack.to_json()).unwrap(),
            r#"{"v":1,"stored":[[1,3],[7,7]]}"#
        );
        assert_eq!(TelemetryAck::decode(&ack.to_json()).unwrap(), ack);
        assert!(TelemetryAck::decode(br#"{"v":1,"stored":[[1]]}"#).is_err());
    }
}
