//! Per bench: the configuration it should run (desired), the one it says it runs (reported),
//! and where delivery of the desired version stands.
//!
//! ```text
//! issue ──> pending ──(bench online)──> delivered ──(ack applied)──> applied
//!              │                            │  └──(no ack within ack_timeout)──> timed_out
//!              └──────(ack rejected)────────┴──> rejected
//! ```
//!
//! `delivered` means the bench has had a live connection since the version was issued, so the
//! broker has handed it the retained document (a bench subscribes on every connect); MQTT gives
//! the server no per-subscriber receipt beyond that. An `applied` acknowledgement, or a status
//! message reporting the desired version, means applied. Late acknowledgements still count:
//! `timed_out` is not final. The state machine is pure; time comes in as an argument.

use std::time::Duration;

use chrono::{DateTime, Utc};
use protocol::config::{AckStatus, BenchConfig, ConfigAck, ConfigDocument};
use protocol::{BenchId, BenchState};
use serde::Serialize;

/// Where delivery of a bench's desired version stands (stored as [`DeliveryState::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Issued and published (retained); the bench has not been connected since.
    Pending,
    /// The bench has been connected since it was issued; no acknowledgement yet.
    Delivered,
    /// The bench acknowledged it as applied (or reports running it).
    Applied,
    /// The bench refused it and runs its previous configuration.
    Rejected,
    /// Delivered, but not acknowledged within the acknowledgement timeout.
    TimedOut,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 5] = [
        Self::Pending,
        Self::Delivered,
        Self::Applied,
        Self::Rejected,
        Self::TimedOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Applied => "applied",
            Self::Rejected => "rejected",
            Self::TimedOut => "timed_out",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

/// Desired and reported configuration of one bench, as stored (`ota_bench_config`).
#[derive(Debug, Clone, PartialEq)]
pub struct BenchConfigRecord {
    pub bench_id: BenchId,
    /// The version the bench should run; increases by one per change, starting at 1.
    pub desired_version: u64,
    /// Its content.
    pub desired: BenchConfig,
    /// When the desired version was issued.
    pub issued_at: DateTime<Utc>,
    pub state: DeliveryState,
    /// When `state` was entered.
    pub state_at: DateTime<Utc>,
    /// The version the bench last said it runs (acknowledgement or status), if it ever did.
    pub reported_version: Option<u64>,
    /// When the bench first reported `reported_version`.
    pub reported_at: Option<DateTime<Utc>>,
    /// The bench's reason for the last rejection of the desired version.
    pub error: Option<String>,
    /// Since when desired and reported differ; `None` while they agree.
    pub drift_since: Option<DateTime<Utc>>,
    /// The rollout that issued the desired version, if any.
    pub rollout_id: Option<String>,
}

/// At most this much of a bench's error text is kept.
const MAX_ERROR_CHARS: usize = 1024;

impl BenchConfigRecord {
    /// The first version of a bench.
    pub fn first(bench_id: BenchId, desired: BenchConfig, now: DateTime<Utc>) -> Self {
        let mut r = Self {
            bench_id,
            desired_version: 1,
            desired,
            issued_at: now,
            state: DeliveryState::Pending,
            state_at: now,
            reported_version: None,
            reported_at: None,
            error: None,
            drift_since: None,
            rollout_id: None,
        };
        r.update_drift(now);
        r
    }

    /// The retained document for the desired version.
    pub fn document(&self) -> ConfigDocument {
        ConfigDocument::new(self.desired_version, self.issued_at, self.desired.clone())
    }

    /// Makes `desired` the next version.
    pub fn issue(&mut self, desired: BenchConfig, rollout_id: Option<String>, now: DateTime<Utc>) {
        self.desired_version += 1;
        self.desired = desired;
        self.issued_at = now;
        self.rollout_id = rollout_id;
        self.error = None;
        self.enter(DeliveryState::Pending, now);
        self.update_drift(now);
    }

    /// An acknowledgement from the bench. Returns whether anything changed.
    pub fn on_ack(&mut self, ack: &ConfigAck, now: DateTime<Utc>) -> bool {
        let before = self.clone();
        match ack.status {
            AckStatus::Applied => {
                if self.reported_version != Some(ack.version) {
                    self.reported_version = Some(ack.version);
                    self.reported_at = Some(now);
                }
                if ack.version == self.desired_version {
                    self.error = None;
                    self.enter(DeliveryState::Applied, now);
                }
            }
            // A rejection of an older version says nothing about the desired one.
            AckStatus::Rejected if ack.version == self.desired_version => {
                self.error = ack
                    .error
                    .as_ref()
                    .map(|e| e.chars().take(MAX_ERROR_CHARS).collect())
                    .or_else(|| Some("rejected without a reason".into()));
                self.enter(DeliveryState::Rejected, now);
            }
            AckStatus::Rejected => {}
        }
        self.update_drift(now);
        *self != before
    }

    /// The running version from a status message. Returns whether anything changed.
    pub fn on_reported(&mut self, version: u64, now: DateTime<Utc>) -> bool {
        let before = self.clone();
        if self.reported_version != Some(version) {
            self.reported_version = Some(version);
            self.reported_at = Some(now);
        }
        if version == self.desired_version && self.state != DeliveryState::Applied {
            self.error = None;
            self.enter(DeliveryState::Applied, now);
        }
        self.update_drift(now);
        *self != before
    }

    /// Time-driven changes: delivered once the bench is online, timed out when the
    /// acknowledgement does not come. Returns whether anything changed.
    pub fn on_tick(&mut self, presence: BenchState, ack_timeout: Duration, now: DateTime<Utc>) -> bool {
        let before = self.clone();
        match self.state {
            DeliveryState::Pending if presence == BenchState::Online => self.enter(DeliveryState::Delivered, now),
            DeliveryState::Delivered if (now - self.state_at).to_std().is_ok_and(|waited| waited > ack_timeout) => {
                self.enter(DeliveryState::TimedOut, now);
            }
            _ => {}
        }
        *self != before
    }

    /// How long desired and reported have differed, zero while they agree.
    pub fn drift(&self, now: DateTime<Utc>) -> Duration {
        self.drift_since
            .and_then(|since| (now - since).to_std().ok())
            .unwrap_or_default()
    }

    fn enter(&mut self, state: DeliveryState, now: DateTime<Utc>) {
        if self.state != state {
            self.state = state;
            self.state_at = now;
        }
    }

    fn update_drift(&mut self, now: DateTime<Utc>) {
        if self.reported_version == Some(self.desired_version) {
            self.drift_since = None;
        } else if self.drift_since.is_none() {
            self.drift_since = Some(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn record() -> BenchConfigRecord {
        BenchConfigRecord::first(BenchId::parse("mostar-01").unwrap(), BenchConfig::default(), t(0))
    }

    const TIMEOUT: Duration = Duration::from_secs(60);

    #[test]
    fn pending_delivered_applied() {
        let mut r = record();
        assert_eq!(
            (r.state, r.desired_version, r.drift_since),
            (DeliveryState::Pending, 1, Some(t(0)))
        );
        assert!(!r.on_tick(BenchState::Offline, TIMEOUT, t(5)));
        assert!(r.on_tick(BenchState::Online, TIMEOUT, t(10)));
        assert_eq!((r.state, r.state_at), (DeliveryState::Delivered, t(10)));
        assert_eq!(r.drift(t(30)), Duration::from_secs(30));
        assert!(r.on_ack(&ConfigAck::applied(1), t(11)));
        assert_eq!(
            (r.state, r.reported_version, r.drift_since),
            (DeliveryState::Applied, Some(1), None)
        );
        assert_eq!(r.drift(t(30)), Duration::ZERO);
        // The same acknowledgement again (a reconnect) changes nothing.
        assert!(!r.on_ack(&ConfigAck::applied(1), t(20)));
    }

    #[test]
    fn a_new_version_drifts_until_applied_and_rejections_keep_the_reason() {
        let mut r = record();
        r.on_ack(&ConfigAck::applied(1), t(1));
        let mut next = BenchConfig::default();
        next.wifi.ssid = "Other".into();
        r.issue(next, Some("r1".into()), t(100));
        assert_eq!(
            (r.desired_version, r.state, r.drift_since),
            (2, DeliveryState::Pending, Some(t(100)))
        );
        // A late rejection of an older version is not about version 2.
        assert!(!r.on_ack(&ConfigAck::rejected(1, "old"), t(101)));
        assert!(r.on_ack(&ConfigAck::rejected(2, "no such ssid"), t(102)));
        assert_eq!(
            (r.state, r.error.as_deref()),
            (DeliveryState::Rejected, Some("no such ssid"))
        );
        assert_eq!(r.reported_version, Some(1));
        assert_eq!(r.drift(t(160)), Duration::from_secs(60));
    }

    #[test]
    fn silence_times_out_and_a_status_report_still_applies() {
        let mut r = record();
        r.on_tick(BenchState::Online, TIMEOUT, t(0));
        assert!(!r.on_tick(BenchState::Online, TIMEOUT, t(60)));
        assert!(r.on_tick(BenchState::Online, TIMEOUT, t(61)));
        assert_eq!(r.state, DeliveryState::TimedOut);
        assert!(r.on_reported(0, t(62)));
        assert_eq!((r.state, r.reported_version), (DeliveryState::TimedOut, Some(0)));
        assert!(r.on_reported(1, t(70)));
        assert_eq!(
            (r.state, r.state_at, r.drift_since),
            (DeliveryState::Applied, t(70), None)
        );
    }

    #[test]
    fn states_round_trip() {
        for s in DeliveryState::ALL {
            assert_eq!(DeliveryState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
