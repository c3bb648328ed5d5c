//! The per-topic ACL rumqttd lacks: a bench publishes only under its own `benches/<id>/` to the
//! bench -> server topics and subscribes only to its own server -> bench topics, by exact name
//! (no wildcards, no `$share`).

use std::fmt;

use protocol::{BenchId, Topic, TopicKind};

/// What a bench tried to do on a topic it does not own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AclAction {
    Publish,
    Subscribe,
}

impl AclAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Publish => "publish",
            Self::Subscribe => "subscribe",
        }
    }
}

impl fmt::Display for AclAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `benches/<own id>/{telemetry,status,ideas,config/ack}`.
pub fn may_publish(bench: &BenchId, topic: &str) -> bool {
    Topic::parse(topic).is_some_and(|t| t.bench == *bench && t.kind.bench_publishes())
}

/// `benches/<own id>/{config,ideas/ack,telemetry/ack}`, exactly.
pub fn may_subscribe(bench: &BenchId, filter: &str) -> bool {
    Topic::parse(filter).is_some_and(|t| t.bench == *bench && !t.kind.bench_publishes())
}

/// The bench's own `telemetry/ack`: subscribing to it asks for storage acknowledgements.
pub fn is_storage_acks(bench: &BenchId, filter: &str) -> bool {
    Topic::parse(filter).is_some_and(|t| t.bench == *bench && t.kind == TopicKind::TelemetryAck)
}

/// Only the bench's own `status` may carry its Last Will.
pub fn may_will(bench: &BenchId, topic: &str) -> bool {
    Topic::parse(topic).is_some_and(|t| t.bench == *bench && t.kind == TopicKind::Status)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn id(s: &str) -> BenchId {
        BenchId::parse(s).unwrap()
    }

    #[test]
    fn publish_only_own_bench_to_server_topics() {
        let a = id("mostar-01");
        for ok in ["telemetry", "status", "ideas", "config/ack"] {
            assert!(may_publish(&a, &format!("benches/mostar-01/{ok}")), "{ok}");
            assert!(
                !may_publish(&a, &format!("benches/zepce-01/{ok}")),
                "{ok} of another bench"
            );
        }
        for bad in [
            "benches/mostar-01/config",
            "benches/mostar-01/ideas/ack",
            "benches/mostar-01/other",
            "benches/mostar-01/telemetry/",
            "benches/+/telemetry",
            "benches/#",
            "$SYS/x",
            "",
            "benches/mostar-01",
        ] {
            assert!(!may_publish(&a, bad), "{bad:?}");
        }
    }

    #[test]
    fn subscribe_only_own_server_to_bench_topics_exactly() {
        let a = id("mostar-01");
        assert!(may_subscribe(&a, "benches/mostar-01/config"));
        assert!(may_subscribe(&a, "benches/mostar-01/ideas/ack"));
        assert!(may_subscribe(&a, "benches/mostar-01/telemetry/ack"));
        assert!(is_storage_acks(&a, "benches/mostar-01/telemetry/ack"));
        assert!(!is_storage_acks(&a, "benches/zepce-01/telemetry/ack"));
        assert!(!is_storage_acks(&a, "benches/mostar-01/ideas/ack"));
        for bad in [
            "benches/zepce-01/config",
            "benches/+/config",
            "benches/mostar-01/#",
            "benches/mostar-01/+",
            "#",
            "$share/g/benches/mostar-01/config",
            "benches/mostar-01/telemetry",
            "benches/mostar-01/status",
        ] {
            assert!(!may_subscribe(&a, bad), "{bad:?}");
        }
    }

    #[test]
    fn will_only_on_own_status() {
        let a = id("mostar-01");
        assert!(may_will(&a, "benches/mostar-01/status"));
        assert!(!may_will(&a, "benches/zepce-01/status"));
        assert!(!may_will(&a, "benches/mostar-01/telemetry"));
    }
}
