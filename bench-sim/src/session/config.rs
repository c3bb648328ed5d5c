//! How a bench obeys its configuration topic: judge, apply or reject, acknowledge, and report the
//! running version in its status.

use rand::Rng;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::Session;
use crate::config::{self, ConfigAck, RunningConfig, Verdict};

impl Session {
    pub(super) fn on_message(&mut self, topic: &str, payload: &[u8]) {
        if topic == self.topics.config {
            self.on_config(payload);
        } else if topic == self.topics.telemetry_ack {
            self.on_storage_ack(payload);
        } else if topic == self.topics.ideas_ack {
            self.on_idea_ack(payload);
        } else {
            debug!(bench.id = %self.id, topic, "ignoring message on an unexpected topic");
        }
    }

    /// Judges a configuration document, applies it or not, and acknowledges it.
    pub(super) fn on_config(&mut self, payload: &[u8]) {
        let verdict = config::judge(payload, &self.running);
        let version = match &verdict {
            Verdict::Apply(next) => next.version,
            Verdict::Reject { version, .. } => *version,
            Verdict::Unreadable(error) => {
                warn!(bench.id = %self.id, error = %error, "unreadable configuration ignored");
                return;
            }
        };
        // The retained document comes again on every reconnect: answer as before. The version
        // running was applied, whatever came in between.
        let earlier = if version > 0 && version == self.running.version {
            Some(ConfigAck::applied(version))
        } else {
            self.last_ack.clone().filter(|a| a.version == version)
        };
        if let Some(ack) = earlier {
            let topic = self.topics.config_ack.clone();
            self.publish_other(&topic, ack.to_json(), false);
            return;
        }
        let ack = match verdict {
            // Draw only when rejecting is on, so configuration traffic does not shift the rest of
            // a seeded run's random choices (backoff jitter).
            Verdict::Apply(_)
                if self.cfg.config_reject_rate > 0.0 && self.rng.random::<f64>() < self.cfg.config_reject_rate =>
            {
                ConfigAck::rejected(version, "simulated failure to apply (reject rate)")
            }
            Verdict::Apply(next) => {
                self.apply(next);
                ConfigAck::applied(version)
            }
            Verdict::Reject { error, .. } => ConfigAck::rejected(version, error),
            Verdict::Unreadable(_) => return,
        };
        match &ack.error {
            None => {
                info!(bench.id = %self.id, config.version = version, interval_s = self.running.telemetry_interval.as_secs(), "configuration applied")
            }
            Some(e) => {
                info!(bench.id = %self.id, config.version = version, error = %e, "configuration rejected")
            }
        }
        let topic = self.topics.config_ack.clone();
        self.publish_other(&topic, ack.to_json(), false);
        if ack.error.is_none() {
            self.publish_status();
        }
        self.last_ack = Some(ack);
    }

    pub(super) fn apply(&mut self, next: RunningConfig) {
        if next.telemetry_interval != self.running.telemetry_interval {
            self.next_sample = (self.last_tick + next.telemetry_interval).max(Instant::now());
        }
        self.model.set_features(next.features);
        self.running = next;
    }
}
