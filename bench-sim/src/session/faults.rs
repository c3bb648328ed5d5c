//! Faults injected into a running bench, and the timers that end the lasting ones.

use std::time::Duration;

use chrono::Utc;
use protocol::{Topic, TopicKind};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{BOOT_TIME, Connection, Session};
use crate::faults::Fault;

impl Session {
    pub(super) fn inject(&mut self, fault: Fault) {
        self.stats.faults_injected += 1;
        info!(
            bench.id = %self.id,
            fault.kind = fault.kind(),
            fault.detail = ?fault,
            fault.injected_at = %Utc::now().to_rfc3339(),
            sim.time = %self.cfg.clock.sim_at(Instant::now()).to_rfc3339(),
            "fault injected"
        );
        let now = Instant::now();
        match fault {
            Fault::Disconnect => self.drop_abruptly(None),
            Fault::Flapping { duration, period } => {
                self.faults.flapping = Some((now + duration, period));
                self.faults.next_flap = Some(now);
            }
            Fault::ClockSkew { offset, duration } => self.faults.skew = Some((offset, duration.map(|d| now + d))),
            Fault::BatteryFailure => self.model.fail_battery(),
            Fault::StuckSensor { duration } => {
                self.model.set_stuck(true);
                self.faults.stuck_until = duration.map(|d| now + d);
            }
            Fault::MalformedPayload => {
                let topic = self.topics.telemetry.clone();
                self.publish_fault(&topic, br#"{"v":1,"ts":"2026-11-26T10:00:00Z","seq":"#.to_vec());
            }
            Fault::OversizedPayload => {
                let mut json =
                    serde_json::to_value(self.model.telemetry(self.wall_now(), self.seq)).unwrap_or_default();
                if let Some(obj) = json.as_object_mut() {
                    obj.insert("padding".into(), "x".repeat(protocol::MAX_PAYLOAD_BYTES + 4096).into());
                }
                let topic = self.topics.telemetry.clone();
                self.publish_fault(&topic, serde_json::to_vec(&json).unwrap_or_default());
            }
            Fault::ForeignTopic { target } => {
                let target = target.or_else(|| self.peers.iter().find(|p| **p != self.id).cloned());
                let Some(target) = target else {
                    warn!(bench.id = %self.id, "no other bench to impersonate");
                    return;
                };
                let topic = Topic::new(target, TopicKind::Telemetry).to_string();
                let payload = serde_json::to_vec(&self.model.telemetry(self.wall_now(), self.seq)).unwrap_or_default();
                self.publish_fault(&topic, payload);
            }
            Fault::WrongToken { attempts } => {
                self.faults.wrong_tokens_left = attempts;
                self.drop_abruptly(Some(Duration::ZERO));
            }
            Fault::Reboot => {
                self.model.reboot();
                self.faults.stuck_until = None;
                self.drop_abruptly(Some(BOOT_TIME));
            }
        }
    }

    pub(super) fn publish_fault(&mut self, topic: &str, payload: Vec<u8>) {
        let bytes = payload.len();
        if !self.publish_other(topic, payload, false) {
            warn!(bench.id = %self.id, topic, "fault payload not sent: not connected");
        } else {
            debug!(bench.id = %self.id, topic, bytes, "fault payload sent");
        }
    }

    pub(super) fn next_timer(&self) -> Option<Instant> {
        let up = matches!(self.conn, Connection::Up(_));
        let flap = self.faults.next_flap.filter(|_| up);
        let ideas = if up {
            self.ideas.values().filter_map(|o| o.next_at).min()
        } else {
            None
        };
        [
            flap,
            self.faults.flapping.map(|f| f.0),
            self.faults.skew.and_then(|s| s.1),
            self.faults.stuck_until,
            ideas,
            self.outbox.next_resend(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub(super) fn on_timer(&mut self) {
        let now = Instant::now();
        if let Some((until, period)) = self.faults.flapping {
            if now >= until {
                info!(bench.id = %self.id, "flapping over");
                self.faults.flapping = None;
                self.faults.next_flap = None;
            } else if self.faults.next_flap.is_some_and(|t| t <= now) && matches!(self.conn, Connection::Up(_)) {
                info!(bench.id = %self.id, "flapping: dropping the connection");
                self.drop_abruptly(None);
                self.faults.next_flap = Some(now + period);
            }
        }
        if self
            .faults
            .skew
            .is_some_and(|(_, until)| until.is_some_and(|u| u <= now))
        {
            info!(bench.id = %self.id, "clock skew over");
            self.faults.skew = None;
        }
        if self.faults.stuck_until.is_some_and(|u| u <= now) {
            info!(bench.id = %self.id, "stuck sensor recovered");
            self.faults.stuck_until = None;
            self.model.set_stuck(false);
        }
        self.send_due_ideas(now);
        self.resend_unconfirmed(now);
    }
}
