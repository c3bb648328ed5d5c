//! Citizens' ideas from the kiosk: drafted by the model, sent on `ideas`, retried with the same
//! id until `ideas/ack` arrives, given up after a few attempts.

use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::{Connection, MAX_OUTSTANDING_IDEAS, Outstanding, Session};
use crate::ideas::{self, Idea};

/// How long to wait when the MQTT client's request queue is full.
const BUSY_RETRY: Duration = Duration::from_millis(200);

impl Session {
    pub(super) fn draft_ideas(&mut self) {
        let n = self.model.take_ideas();
        if !self.cfg.ideas {
            return;
        }
        for _ in 0..n {
            let ts = self.wall_now();
            let idea = Idea::draft(&mut self.rng, ts);
            if self.ideas.len() >= MAX_OUTSTANDING_IDEAS
                && let Some((&oldest, _)) = self.ideas.iter().min_by_key(|(_, o)| o.idea.ts)
            {
                warn!(bench.id = %self.id, idea.id = %oldest, "too many unacknowledged ideas; giving up the oldest");
                self.ideas.remove(&oldest);
            }
            self.ideas.insert(
                idea.idea_id,
                Outstanding {
                    idea,
                    attempts: 0,
                    next_at: Some(Instant::now()),
                },
            );
        }
    }

    pub(super) fn send_due_ideas(&mut self, now: Instant) {
        if !matches!(self.conn, Connection::Up(_)) {
            return;
        }
        let due: Vec<Uuid> = self
            .ideas
            .iter()
            .filter(|(_, o)| o.next_at.is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(o) = self.ideas.get(&id) else {
                continue;
            };
            if o.attempts > 0 && ideas::retry_after(self.cfg.idea_retry, o.attempts).is_none() {
                warn!(bench.id = %self.id, idea.id = %id, attempts = o.attempts, "no ack for idea; giving up");
                self.ideas.remove(&id);
                continue;
            }
            let payload = o.idea.to_json();
            let topic = self.topics.ideas.clone();
            if !self.publish_other(&topic, payload, false) {
                // The client's queue is full: try the rest shortly rather than spin.
                let later = now + BUSY_RETRY;
                for o in self.ideas.values_mut().filter(|o| o.next_at.is_some_and(|t| t <= now)) {
                    o.next_at = Some(later);
                }
                break;
            }
            self.stats.ideas_sent += 1;
            if let Some(o) = self.ideas.get_mut(&id) {
                o.attempts += 1;
                if o.attempts > 1 {
                    info!(bench.id = %self.id, idea.id = %id, attempt = o.attempts, "idea not acknowledged; sending again");
                }
                o.next_at =
                    Some(now + ideas::retry_after(self.cfg.idea_retry, o.attempts).unwrap_or(self.cfg.idea_retry));
            }
        }
    }

    pub(super) fn on_idea_ack(&mut self, payload: &[u8]) {
        match ideas::acked_idea_id(payload) {
            Some(id) if self.ideas.remove(&id).is_some() => self.stats.ideas_acked += 1,
            Some(id) => debug!(bench.id = %self.id, idea.id = %id, "duplicate or unknown idea ack"),
            None => warn!(bench.id = %self.id, "unreadable idea ack ignored"),
        }
    }
}
