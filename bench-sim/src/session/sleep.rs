//! Battery saving: below a threshold a bench announces `sleeping` (retained, with `until`),
//! disconnects cleanly and stops sampling; it checks in when `until` passes and wakes when the
//! battery has recovered.

use chrono::{DateTime, TimeDelta, Utc};
use protocol::Status;
use tokio::time::Instant;
use tracing::info;

use super::{Connection, Mode, Session};

impl Session {
    /// When the bench expects to have charged again: two hours after the sun is next well up,
    /// in real time.
    pub(super) fn planned_wake(&self) -> (DateTime<Utc>, Instant) {
        let start = self.model.now();
        let sim_wait = (1..=3 * 96)
            .map(|q| TimeDelta::minutes(15 * q))
            .find(|&d| self.model.sun_elevation_deg(start + d) > 25.0)
            .map_or(TimeDelta::hours(24), |d| d + TimeDelta::hours(2));
        let real = self.cfg.clock.to_real(sim_wait).max(self.running.telemetry_interval);
        let until = self.wall_now() + TimeDelta::from_std(real).unwrap_or(TimeDelta::hours(1));
        (until, Instant::now() + real)
    }

    pub(super) fn go_to_sleep(&mut self) {
        let (until, check_in_at) = self.planned_wake();
        info!(bench.id = %self.id, battery_pct = self.model.battery_pct(), until = %until, "battery low, going to sleep");
        self.mode = Mode::Asleep { until, check_in_at };
        self.model.set_sleeping(true);
        if matches!(self.conn, Connection::Up(_)) {
            self.announce_sleep(until);
        }
    }

    pub(super) fn announce_sleep(&mut self, until: DateTime<Utc>) {
        let topic = self.topics.status.clone();
        self.publish_other(&topic, Status::sleeping(until).to_json(), true);
        if let Some(link) = self.conn.up() {
            link.closing = true;
            if link.client.try_disconnect().is_err() {
                self.drop_abruptly(None);
                self.conn = Connection::Down { retry_at: None };
            }
        }
    }

    pub(super) fn wake(&mut self) {
        info!(bench.id = %self.id, battery_pct = self.model.battery_pct(), "battery recovered, waking up");
        self.mode = Mode::Awake;
        self.model.set_sleeping(false);
        if let Connection::Down { retry_at } = &mut self.conn {
            *retry_at = Some(Instant::now());
        }
    }

    pub(super) fn check_in(&mut self) {
        let (until, check_in_at) = self.planned_wake();
        self.mode = Mode::Asleep { until, check_in_at };
        if let Connection::Down { retry_at } = &mut self.conn {
            *retry_at = Some(Instant::now());
        }
    }
}
